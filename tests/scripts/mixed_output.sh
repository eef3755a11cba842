# Writes ~20 MB to stdout and, byte for byte, to $OUT_FILE (via tee): many short lines, non-ASCII
# text, a 3 MB line without any newline, and no newline at the very end.
set -e
{
  seq 1 2000000
  for i in $(seq 1 2000); do printf 'ünïcödé 中文字符 ✓ 🚀 line %d\n' "$i"; done
  head -c 3000000 /dev/zero | tr '\0' 'x'
  printf '\n'
  seq 1 300000 | tr '\n' ' '
  printf 'the end, no newline: Ω'
} | tee "$OUT_FILE"
