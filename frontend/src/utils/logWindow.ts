/**
 * Paging maths for the log viewer: it holds one bounded window of the log (byte offsets from the server)
 * and replaces it to move, so a log of any size is reached without the page growing.
 */

/** One page: what the viewer opens with, and what each step earlier / later shows. */
export const PAGE_BYTES = 128 * 1024
/** While following live output the window may grow to this; then its oldest pieces are dropped. */
export const MAX_WINDOW_BYTES = 4 * PAGE_BYTES

/** The byte range of the page that ends where the window now starts (empty at the log's start). */
export function pageBefore(start: number, page = PAGE_BYTES): { offset: number; limit: number } {
  const offset = Math.max(0, start - page)
  return { offset, limit: start - offset }
}

/** Where a page "at `percent` %" of a `size`-byte log starts: whole page shown, never past the end. */
export function offsetAtPercent(percent: number, size: number, page = PAGE_BYTES): number {
  const clamped = Math.min(100, Math.max(0, percent))
  const wanted = Math.floor((clamped / 100) * size)
  return Math.max(0, Math.min(wanted, size - page))
}

/** The window's position in the log, in percent (its start), for a slider. */
export function percentOf(offset: number, size: number): number {
  return size > 0 ? Math.round((offset / size) * 1000) / 10 : 0
}

/**
 * Starts text read from byte `offset` at the next line: a page that does not start the log usually begins
 * mid-line. The bytes dropped are counted exactly; when they cannot be (a U+FFFD stands for 1 to 3 bytes)
 * or no line ends in the page, the text is kept as it is.
 */
export function startAtLine(text: string, offset: number): { text: string; offset: number } {
  if (offset === 0) return { text, offset }
  const cut = text.indexOf('\n')
  if (cut < 0 || cut === text.length - 1) return { text, offset }
  const dropped = text.slice(0, cut + 1)
  if (dropped.includes('\uFFFD')) return { text, offset }
  return { text: text.slice(cut + 1), offset: offset + new TextEncoder().encode(dropped).length }
}

/** A piece of the window: its end in the log and how many characters of the held text it is. */
export interface WindowPiece {
  end: number
  chars: number
}

/**
 * Which of the oldest pieces to drop so that the window (`start`..the last piece's end) is at most `max`
 * bytes: returns how many pieces, their characters, and the window's new start. The newest piece stays.
 */
export function trimWindow(start: number, pieces: WindowPiece[], max = MAX_WINDOW_BYTES): { count: number; chars: number; start: number } {
  const end = pieces.length ? pieces[pieces.length - 1].end : start
  let count = 0
  let chars = 0
  let newStart = start
  while (count < pieces.length - 1 && end - newStart > max) {
    chars += pieces[count].chars
    newStart = pieces[count].end
    count += 1
  }
  return { count, chars, start: newStart }
}
