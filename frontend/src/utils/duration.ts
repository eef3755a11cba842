/** Time limits as people write them: `2h30m`, `90m`, `45s`, `1d`, or plain seconds. */

const UNIT_S = { d: 86400, h: 3600, m: 60, s: 1 } as const
const DURATION = /^(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?$/i
/** The server's upper bound for `time_limit_s` (ten years). */
export const MAX_TIME_LIMIT_S = 10 * 365 * 86400

/**
 * Parses a duration into whole seconds. Blank means none (0). Units d, h, m, s in that order, each at
 * most once, spaces allowed (`1d 2h`); a bare number is seconds. Anything else gives null.
 */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim()
  if (!trimmed) return 0
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const match = DURATION.exec(trimmed)
  if (!match || !match.slice(1).some((part) => part !== undefined)) return null
  const [, d, h, m, s] = match.map((part) => Number(part ?? 0))
  return d * UNIT_S.d + h * UNIT_S.h + m * UNIT_S.m + s
}

/** Formats seconds the way parseDuration reads them (`9000` → `2h30m`); 0 or less gives ''. */
export function formatLimit(seconds: number | null | undefined): string {
  if (!seconds || seconds <= 0 || !Number.isFinite(seconds)) return ''
  let rest = Math.floor(seconds)
  let text = ''
  for (const [unit, size] of Object.entries(UNIT_S)) {
    const count = Math.floor(rest / size)
    rest -= count * size
    if (count) text += `${count}${unit}`
  }
  return text
}
