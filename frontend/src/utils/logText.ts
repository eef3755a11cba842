/**
 * Byte-offset bookkeeping for a task log. Offsets count bytes of the stored log and come only from the
 * server: it decodes the bytes (an invalid sequence becomes U+FFFD, one character for 1 to 3 stored
 * bytes), so the length of the text we hold says nothing about where it ends in the log.
 */

/** A log frame as the server sends it: `data` was decoded from the stored bytes `offset`..`end`. */
export interface LogPiece {
  offset: number
  end: number
  data: string
}

/**
 * Fits a frame onto a log we hold up to byte `nextOffset`. Returns the new text and our new end.
 * A frame we already hold adds nothing. A frame that does not start at our end (a gap, or an overlap
 * whose text cannot be cut at a byte) adds nothing either and asks to `resync`: to reopen the stream
 * at our end, where the server starts on exactly that byte.
 */
export function appendChunk(nextOffset: number, piece: LogPiece): { text: string; nextOffset: number; resync: boolean } {
  if (piece.end <= nextOffset) return { text: '', nextOffset, resync: false }
  if (piece.offset === nextOffset) return { text: piece.data, nextOffset: piece.end, resync: false }
  return { text: '', nextOffset, resync: true }
}
