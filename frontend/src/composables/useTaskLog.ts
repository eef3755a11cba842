import { ref } from 'vue'
import * as api from '@/api'
import { FINISHED_STATUSES, type LogFrame } from '@/api'
import { appendChunk } from '@/utils/logText'

/** How much of a log to show when it opens, and how much more each "load earlier" adds. */
export const TAIL_BYTES = 256 * 1024
export const EARLIER_BYTES = 1024 * 1024
const RECONNECT_DELAY_MS = 2000

export type LogStreamState = 'loading' | 'live' | 'reconnecting' | 'closed' | 'error'

export interface LogSink {
  /** Replace everything shown with `text`. */
  reset: (text: string) => void
  /** Add `text` at the end. */
  append: (text: string) => void
}

interface Options {
  taskId: number
  isFinished: () => boolean
  sink: LogSink
  onStatus: (frame: Extract<LogFrame, { type: 'status' }>) => void
  onError: (err: unknown) => void
}

/**
 * Keeps one task's log: opens it at its tail, streams new output over the WebSocket
 * (reconnecting from the last byte while the task is unfinished) and loads older output on demand.
 * Byte offsets come only from the server (a page's `offset`/`next_offset`, a frame's `offset`/`end`).
 */
export function useTaskLog({ taskId, isFinished, sink, onStatus, onError }: Options) {
  const state = ref<LogStreamState>('loading')
  const startOffset = ref(0)
  const nextOffset = ref(0)
  const loadingEarlier = ref(false)
  let text = ''
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
        closeSocket?.()
        closeSocket = null
        reconnectLater()
        return
      }
      nextOffset.value = chunk.nextOffset
      if (chunk.text) {
        text += chunk.text
        sink.append(chunk.text)
      }
    } else if (frame.type === 'status') {
      if (FINISHED_STATUSES.includes(frame.status)) sawFinish = true
      onStatus(frame)
    }
  }

  function connect(): void {
    if (stopped) return
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

  /** Reopens the stream at the last byte we hold (`nextOffset`, the last frame's `end`). */
  function reconnectLater(): void {
    state.value = 'reconnecting'
    retryTimer = setTimeout(connect, RECONNECT_DELAY_MS)
  }

  async function start(): Promise<void> {
    try {
      const slice = await api.getTaskLog(taskId, { tail: TAIL_BYTES })
      if (stopped) return
      startOffset.value = slice.offset
      nextOffset.value = slice.next_offset
      text = slice.data
      sink.reset(text)
      connect()
    } catch (err) {
      state.value = 'error'
      onError(err)
    }
  }

  async function loadEarlier(): Promise<void> {
    if (startOffset.value <= 0 || loadingEarlier.value) return
    loadingEarlier.value = true
    try {
      const from = Math.max(0, startOffset.value - EARLIER_BYTES)
      let earlier = ''
      let at = from
      // The server may answer less than asked for; keep reading until the old start is reached.
      while (at < startOffset.value) {
        const slice = await api.getTaskLog(taskId, { offset: at, limit: startOffset.value - at })
        if (slice.next_offset <= at) break
        earlier += slice.data
        at = slice.next_offset
      }
      // xterm cannot prepend, so the whole known text is written again.
      text = earlier + text
      startOffset.value = from
      sink.reset(text)
    } catch (err) {
      onError(err)
    } finally {
      loadingEarlier.value = false
    }
  }

  function stop(): void {
    stopped = true
    if (retryTimer) clearTimeout(retryTimer)
    closeSocket?.()
    closeSocket = null
  }

  return { state, startOffset, nextOffset, loadingEarlier, start, loadEarlier, stop }
}
