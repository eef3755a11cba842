import { computed, ref } from 'vue'
import * as api from '@/api'
import { FINISHED_STATUSES, type LogFrame, type LogSlice } from '@/api'
import { appendChunk } from '@/utils/logText'
import { MAX_WINDOW_BYTES, PAGE_BYTES, offsetAtPercent, pageBefore, startAtLine, trimWindow, type WindowPiece } from '@/utils/logWindow'

const RECONNECT_DELAY_MS = 2000

export type LogStreamState = 'loading' | 'live' | 'reconnecting' | 'closed' | 'error' | 'paused'

/** Where the log is shown. The sink holds the window's text; this composable keeps only offsets. */
export interface LogSink {
  /** Replace everything shown with `text`, scrolled to its top or (by default) its bottom. */
  reset: (text: string, view?: 'top' | 'bottom') => void
  /** Add `text` at the end. */
  append: (text: string) => void
  /** Forget the first `chars` characters held (the window moved on while following live output). */
  dropFront: (chars: number) => void
}

interface Options {
  taskId: number
  isFinished: () => boolean
  sink: LogSink
  onStatus: (frame: Extract<LogFrame, { type: 'status' }>) => void
  onError: (err: unknown) => void
}

/**
 * One task's log as a bounded window (`startOffset`..`nextOffset` of `size` bytes): it opens at the tail
 * and follows new output over the WebSocket (reconnecting from the last byte while the task is unfinished);
 * moving (start, earlier, later, a position) replaces the window and pauses the stream until the end is
 * shown again. Byte offsets come only from the server (a page's `offset`/`next_offset`, a frame's `end`).
 */
export function useTaskLog({ taskId, isFinished, sink, onStatus, onError }: Options) {
  const state = ref<LogStreamState>('loading')
  const startOffset = ref(0)
  const nextOffset = ref(0)
  const size = ref(0)
  const busy = ref(false)
  /** True while the window is the log's end, following new output. */
  const following = ref(true)
  const atEnd = computed(() => nextOffset.value >= size.value)
  let pieces: WindowPiece[] = []
  let closeSocket: (() => void) | null = null
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let stopped = false
  /** Set by a status frame, which may arrive before the owner has reloaded the task. */
  let sawFinish = false

  function handleFrame(frame: LogFrame): void {
    if (!closeSocket) return // a late frame of a socket we closed
    if (frame.type === 'log') {
      const chunk = appendChunk(nextOffset.value, frame)
      if (chunk.resync) {
        disconnect()
        reconnectLater()
        return
      }
      nextOffset.value = chunk.nextOffset
      size.value = Math.max(size.value, chunk.nextOffset)
      if (chunk.text) {
        sink.append(chunk.text)
        pieces.push({ end: chunk.nextOffset, chars: chunk.text.length })
        keepBounded()
      }
    } else if (frame.type === 'status') {
      if (FINISHED_STATUSES.includes(frame.status)) sawFinish = true
      onStatus(frame)
    }
  }

  function keepBounded(): void {
    const trim = trimWindow(startOffset.value, pieces, MAX_WINDOW_BYTES)
    if (!trim.count) return
    sink.dropFront(trim.chars)
    pieces = pieces.slice(trim.count)
    startOffset.value = trim.start
  }

  function connect(): void {
    if (stopped || !following.value) return
    closeSocket = api.openTaskLog(taskId, nextOffset.value, {
      onOpen: () => {
        state.value = 'live'
      },
      onFrame: handleFrame,
      onClose: () => {
        closeSocket = null
        if (stopped) return
        if (sawFinish || isFinished()) {
          state.value = 'closed'
          return
        }
        reconnectLater()
      },
    })
  }

  function disconnect(): void {
    if (retryTimer) clearTimeout(retryTimer)
    retryTimer = null
    closeSocket?.()
    closeSocket = null
  }

  /** Reopens the stream at the last byte we hold (`nextOffset`, the last frame's `end`). */
  function reconnectLater(): void {
    state.value = 'reconnecting'
    retryTimer = setTimeout(connect, RECONNECT_DELAY_MS)
  }

  /** Shows `text` (bytes `offset`..`end` of a `logSize`-byte log) in place of the window. */
  function show(text: string, offset: number, end: number, logSize: number, view: 'top' | 'bottom' = 'bottom'): void {
    startOffset.value = offset
    nextOffset.value = end
    size.value = Math.max(logSize, end)
    pieces = [{ end, chars: text.length }]
    sink.reset(text, view)
  }

  /** Runs one move at a time; a failed read leaves the window as it was. */
  async function move(read: () => Promise<void>): Promise<void> {
    if (busy.value || stopped) return
    busy.value = true
    try {
      await read()
    } catch (err) {
      if (state.value === 'loading') state.value = 'error'
      onError(err)
    } finally {
      busy.value = false
    }
  }

  /** Reads `limit` bytes from `offset`; the server may answer less than asked, so read on until reached. */
  async function readRange(offset: number, limit: number): Promise<LogSlice> {
    let page = await api.getTaskLog(taskId, { offset, limit })
    let data = page.data
    while (page.next_offset < offset + limit && page.next_offset < page.size) {
      const more = await api.getTaskLog(taskId, { offset: page.next_offset, limit: offset + limit - page.next_offset })
      if (more.next_offset <= page.next_offset) break
      data += more.data
      page = { ...more, offset }
    }
    return { ...page, offset, data }
  }

  /** The log's end, following new output. */
  function showEnd(): Promise<void> {
    return move(async () => {
      const page = await api.getTaskLog(taskId, { tail: PAGE_BYTES })
      if (stopped) return
      const lined = startAtLine(page.data, page.offset)
      disconnect()
      following.value = true
      show(lined.text, lined.offset, page.next_offset, page.size)
      connect()
    })
  }

  /** A page from byte `offset` (from the next line, unless it is the log's start); pauses the stream. */
  function showFrom(offset: number, alignToLine = true): Promise<void> {
    return move(async () => {
      const page = await readRange(offset, PAGE_BYTES)
      if (stopped) return
      const lined = alignToLine ? startAtLine(page.data, page.offset) : { text: page.data, offset: page.offset }
      pause()
      show(lined.text, lined.offset, page.next_offset, page.size, 'top')
    })
  }

  /** The page just before the window; it always moves while the window does not start the log. */
  function showEarlier(): Promise<void> {
    if (startOffset.value <= 0) return Promise.resolve()
    const range = pageBefore(startOffset.value)
    return move(async () => {
      const page = await readRange(range.offset, range.limit)
      if (stopped) return
      const lined = startAtLine(page.data, page.offset)
      const keep = lined.offset < startOffset.value ? lined : { text: page.data, offset: page.offset }
      pause()
      show(keep.text, keep.offset, page.next_offset, Math.max(page.size, size.value))
    })
  }

  function pause(): void {
    following.value = false
    disconnect()
    state.value = 'paused'
  }

  return {
    state, startOffset, nextOffset, size, busy, following, atEnd,
    start: showEnd,
    showEnd,
    showStart: () => showFrom(0, false),
    showEarlier,
    showLater: () => showFrom(nextOffset.value, false),
    showAtPercent: (percent: number) => showFrom(offsetAtPercent(percent, size.value)),
    stop(): void {
      stopped = true
      disconnect()
    },
  }
}
