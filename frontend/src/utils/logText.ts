/** Byte-offset bookkeeping for a task log: offsets count UTF-8 bytes, the text we hold is a string. */

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function byteLength(text: string): number {
  return encoder.encode(text).length
}

/**
 * Fits a chunk that starts at byte `chunkOffset` onto a log we hold up to byte `nextOffset`.
 * Returns only the new text (repeats and overlaps are dropped) and the new end offset.
 * A gap (chunk starting past our end) is accepted as is; the caller may reload to fill it.
 */
export function appendChunk(
  nextOffset: number,
  chunkOffset: number,
  data: string,
): { text: string; nextOffset: number; gap: boolean } {
  const bytes = encoder.encode(data)
  const chunkEnd = chunkOffset + bytes.length
  if (chunkEnd <= nextOffset) return { text: '', nextOffset, gap: false }
  if (chunkOffset >= nextOffset) {
    return { text: data, nextOffset: chunkEnd, gap: chunkOffset > nextOffset }
  }
  const text = decoder.decode(bytes.subarray(nextOffset - chunkOffset))
  return { text, nextOffset: chunkEnd, gap: false }
}
