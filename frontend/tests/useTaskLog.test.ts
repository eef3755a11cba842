import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import * as api from '@/api'
import type { LogFrame, LogSlice, LogStreamHandlers } from '@/api'
import { useTaskLog } from '@/composables/useTaskLog'

function slice(offset: number, data: string): LogSlice {
  return { task_id: 4, offset, next_offset: offset + new TextEncoder().encode(data).length, size: 0, data }
}

describe('useTaskLog', () => {
  let handlers: LogStreamHandlers[]
  let finished: boolean
  const sink = { reset: vi.fn(), append: vi.fn(), dropFront: vi.fn() }
  const onStatus = vi.fn()
  const onError = vi.fn()

  beforeEach(() => {
    vi.useFakeTimers()
    handlers = []
    finished = false
    sink.reset.mockReset()
    sink.append.mockReset()
    sink.dropFront.mockReset()
    onStatus.mockReset()
    vi.spyOn(api, 'openTaskLog').mockImplementation((_id, _offset, h) => {
      handlers.push(h)
      return () => {}
    })
  })

  afterEach(() => {
    vi.useRealTimers()
    vi.restoreAllMocks()
  })

  function start() {
    const log = useTaskLog({ taskId: 4, isFinished: () => finished, sink, onStatus, onError })
    return log.start().then(() => log)
  }

  it('opens at the tail, then streams from where the tail ended', async () => {
    vi.spyOn(api, 'getTaskLog').mockResolvedValue(slice(100, 'abc'))
    const log = await start()
    expect(api.getTaskLog).toHaveBeenCalledWith(4, { tail: expect.any(Number) })
    expect(sink.reset).toHaveBeenCalledWith('abc', 'bottom')
    expect(api.openTaskLog).toHaveBeenCalledWith(4, 103, expect.anything())
    handlers[0].onOpen?.()
    expect(log.state.value).toBe('live')

    handlers[0].onFrame({ type: 'log', offset: 103, end: 105, data: 'de' })
    handlers[0].onFrame({ type: 'log', offset: 103, end: 105, data: 'de' }) // a repeat adds nothing
    expect(sink.append.mock.calls).toEqual([['de']])
    expect(log.nextOffset.value).toBe(105)

    handlers[0].onFrame({ type: 'status', status: 'failed', exit_code: 1, status_reason: 'exit code 1' })
    expect(onStatus).toHaveBeenCalledOnce()
  })

  it('reconnects from the last byte while the task is unfinished, and stops once it finished', async () => {
    vi.spyOn(api, 'getTaskLog').mockResolvedValue(slice(0, 'x'))
    const log = await start()
    handlers[0].onClose?.()
    expect(log.state.value).toBe('reconnecting')
    await vi.advanceTimersByTimeAsync(2500)
    expect(api.openTaskLog).toHaveBeenLastCalledWith(4, 1, expect.anything())

    finished = true
    handlers[1].onClose?.()
    expect(log.state.value).toBe('closed')
    await vi.advanceTimersByTimeAsync(5000)
    expect(api.openTaskLog).toHaveBeenCalledTimes(2)
  })

  it('does not reconnect after a status frame said the task finished', async () => {
    vi.spyOn(api, 'getTaskLog').mockResolvedValue(slice(0, 'x'))
    const log = await start()
    handlers[0].onFrame({ type: 'status', status: 'completed', exit_code: 0, status_reason: null })
    handlers[0].onClose?.()
    expect(log.state.value).toBe('closed')
    await vi.advanceTimersByTimeAsync(5000)
    expect(api.openTaskLog).toHaveBeenCalledTimes(1)
  })

  it('shows the page before the window in its place, from a line, and pauses the stream', async () => {
    const close = vi.fn()
    vi.mocked(api.openTaskLog).mockImplementation((_id, _offset, h) => {
      handlers.push(h)
      return close
    })
    const getTaskLog = vi.spyOn(api, 'getTaskLog').mockResolvedValueOnce({ ...slice(300000, 'new\n'), size: 300004 })
    const log = await start()
    getTaskLog.mockResolvedValueOnce({ ...slice(300000 - 131072, 'ld\nold\n'), next_offset: 200000, size: 300004 })
    getTaskLog.mockResolvedValueOnce({ ...slice(200000, '---\n'), next_offset: 300000, size: 300004 })
    await log.showEarlier()
    // The server answered less than asked for, so a second read fills the rest.
    expect(getTaskLog).toHaveBeenNthCalledWith(2, 4, { offset: 300000 - 131072, limit: 131072 })
    expect(getTaskLog).toHaveBeenNthCalledWith(3, 4, { offset: 200000, limit: 100000 })
    expect(sink.reset).toHaveBeenLastCalledWith('old\n---\n', 'bottom') // replaced, from the first whole line
    expect(log.startOffset.value).toBe(300000 - 131072 + 3)
    expect(log.nextOffset.value).toBe(300000)
    expect(close).toHaveBeenCalledOnce()
    expect(log.state.value).toBe('paused')

    getTaskLog.mockResolvedValueOnce({ ...slice(0, 'first\n'), next_offset: 131072, size: 300004 })
    await log.showStart()
    expect(sink.reset).toHaveBeenLastCalledWith('first\n', 'top')
    expect(log.startOffset.value).toBe(0)

    getTaskLog.mockResolvedValueOnce({ ...slice(299990, 'tail\nend\n'), size: 300000 })
    await log.showEnd()
    expect(sink.reset).toHaveBeenLastCalledWith('end\n', 'bottom')
    expect(log.startOffset.value).toBe(299995)
    expect(api.openTaskLog).toHaveBeenLastCalledWith(4, 299999, expect.anything())
  })

  it('keeps the live window bounded by dropping its oldest pieces', async () => {
    vi.spyOn(api, 'getTaskLog').mockResolvedValue(slice(0, 'a'))
    const log = await start()
    const piece = 'x'.repeat(200 * 1024)
    for (let i = 0; i < 2; i += 1) {
      const at = log.nextOffset.value
      handlers[0].onFrame({ type: 'log', offset: at, end: at + piece.length, data: piece })
    }
    expect(sink.dropFront).not.toHaveBeenCalled()
    const at = log.nextOffset.value
    handlers[0].onFrame({ type: 'log', offset: at, end: at + piece.length, data: piece })
    expect(sink.dropFront).toHaveBeenCalledWith(1 + piece.length)
    expect(log.startOffset.value).toBe(1 + piece.length)
  })

  describe('output that is not UTF-8', () => {
    const utf8 = (text: string) => [...new TextEncoder().encode(text)]
    // The stored log, piece by piece as the task wrote it, and the frames the server sends for it
    // (offset/end are stored bytes; the server's decoder holds back a character cut at a read's end).
    const stored = [
      [...utf8('line 1 '), 0xff, 0xfe, ...utf8(' ok\n')], //  0-13: read by the tail request
      [...utf8('line 2 '), 0xff, ...utf8(' ok\n')], // 13-25
      [...utf8('中文 '), 0xe4, 0xb8], // 25-34: the last two bytes are the start of 中
      [0xad, ...utf8('\n')], // 34-36
      [0xe2, 0x9c, ...utf8('!\n')], // 36-40: a character cut short for good
      [0xe0, 0x80, 0xf0, 0x9f, 0x98, 0x80], // 40-46: an overlong form, then 😀
      [0xf0, 0x9f], // 46-48: the task ended in the middle of a character
    ]
    const log = new Uint8Array(stored.flat())
    const tailPage: LogSlice = { task_id: 4, offset: 0, next_offset: 13, size: 13, data: 'line 1 \ufffd\ufffd ok\n' }
    const firstSocket: LogFrame[] = [
      { type: 'log', offset: 13, end: 25, data: 'line 2 \ufffd ok\n' },
      { type: 'log', offset: 25, end: 32, data: '中文 ' },
      { type: 'log', offset: 32, end: 36, data: '中\n' },
    ]
    const secondSocket: LogFrame[] = [
      { type: 'log', offset: 36, end: 40, data: '\ufffd!\n' },
      { type: 'log', offset: 40, end: 46, data: '\ufffd\ufffd😀' },
      { type: 'status', status: 'completed', exit_code: 0, status_reason: null },
      { type: 'log', offset: 46, end: 48, data: '\ufffd' },
    ]

    function shown(): string {
      const resets = sink.reset.mock.calls
      return resets[resets.length - 1][0] + sink.append.mock.calls.map((call) => call[0]).join('')
    }

    it('shows the stored bytes decoded with U+FFFD, and resumes from the last frame\'s end', async () => {
      vi.spyOn(api, 'getTaskLog').mockResolvedValue(tailPage)
      const taskLog = await start()
      expect(api.openTaskLog).toHaveBeenLastCalledWith(4, 13, expect.anything())
      firstSocket.forEach((frame) => handlers[0].onFrame(frame))
      expect(taskLog.nextOffset.value).toBe(36) // not 13 + the UTF-8 length of the text (38)

      handlers[0].onClose?.() // the connection drops
      await vi.advanceTimersByTimeAsync(2500)
      expect(api.openTaskLog).toHaveBeenLastCalledWith(4, 36, expect.anything())
      secondSocket.forEach((frame) => handlers[1].onFrame(frame))

      expect(shown()).toBe(new TextDecoder('utf-8').decode(log))
      expect(shown().split('\n')).toEqual(['line 1 \ufffd\ufffd ok', 'line 2 \ufffd ok', '中文 中', '\ufffd!', '\ufffd\ufffd😀\ufffd'])
      expect(taskLog.nextOffset.value).toBe(log.length)
    })

    it('a frame that does not fit at our end shows nothing and reopens the stream there', async () => {
      vi.spyOn(api, 'getTaskLog').mockResolvedValue(tailPage)
      const close = vi.fn()
      vi.mocked(api.openTaskLog).mockImplementation((_id, _offset, h) => {
        handlers.push(h)
        return close
      })
      const taskLog = await start()
      handlers[0].onFrame(firstSocket[1]) // 25-32, but we hold only up to 13
      expect(close).toHaveBeenCalledOnce()
      expect(taskLog.state.value).toBe('reconnecting')
      handlers[0].onFrame(firstSocket[0]) // a late frame of the closed socket is ignored
      await vi.advanceTimersByTimeAsync(2500)
      expect(api.openTaskLog).toHaveBeenLastCalledWith(4, 13, expect.anything())
      firstSocket.forEach((frame) => handlers[1].onFrame(frame))
      expect(shown()).toBe(new TextDecoder().decode(log.subarray(0, 36)))
      expect(taskLog.nextOffset.value).toBe(36)
    })

    it('moves by the pages\' byte offsets, not their text', async () => {
      const getTaskLog = vi.spyOn(api, 'getTaskLog')
      getTaskLog.mockResolvedValueOnce({ task_id: 4, offset: 13, next_offset: 25, size: 25, data: 'line 2 \ufffd ok\n' })
      const taskLog = await start()
      getTaskLog.mockResolvedValueOnce({ task_id: 4, offset: 0, next_offset: 8, size: 25, data: 'line 1 \ufffd' })
      getTaskLog.mockResolvedValueOnce({ task_id: 4, offset: 8, next_offset: 13, size: 25, data: '\ufffd ok\n' })
      await taskLog.showEarlier()
      expect(getTaskLog).toHaveBeenNthCalledWith(3, 4, { offset: 8, limit: 5 })
      expect(sink.reset).toHaveBeenLastCalledWith(new TextDecoder().decode(log.subarray(0, 13)), 'bottom')
      expect(taskLog.startOffset.value).toBe(0)
      expect(taskLog.nextOffset.value).toBe(13)
    })
  })
})
