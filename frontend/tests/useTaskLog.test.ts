import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import * as api from '@/api'
import type { LogSlice, LogStreamHandlers } from '@/api'
import { useTaskLog } from '@/composables/useTaskLog'

function slice(offset: number, data: string): LogSlice {
  return { task_id: 4, offset, next_offset: offset + new TextEncoder().encode(data).length, size: 0, data }
}

describe('useTaskLog', () => {
  let handlers: LogStreamHandlers[]
  let finished: boolean
  const sink = { reset: vi.fn(), append: vi.fn() }
  const onStatus = vi.fn()
  const onError = vi.fn()

  beforeEach(() => {
    vi.useFakeTimers()
    handlers = []
    finished = false
    sink.reset.mockReset()
    sink.append.mockReset()
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
    expect(sink.reset).toHaveBeenCalledWith('abc')
    expect(api.openTaskLog).toHaveBeenCalledWith(4, 103, expect.anything())
    handlers[0].onOpen?.()
    expect(log.state.value).toBe('live')

    handlers[0].onFrame({ type: 'log', offset: 103, data: 'de' })
    handlers[0].onFrame({ type: 'log', offset: 103, data: 'de' }) // a repeat adds nothing
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

  it('loads earlier output and redraws everything', async () => {
    const getTaskLog = vi.spyOn(api, 'getTaskLog').mockResolvedValueOnce(slice(6, 'new'))
    const log = await start()
    getTaskLog.mockResolvedValueOnce(slice(0, 'old'))
    getTaskLog.mockResolvedValueOnce(slice(3, '---'))
    await log.loadEarlier()
    // The server answered only 3 of the 6 bytes asked for, so a second read fills the rest.
    expect(getTaskLog).toHaveBeenNthCalledWith(2, 4, { offset: 0, limit: 6 })
    expect(getTaskLog).toHaveBeenNthCalledWith(3, 4, { offset: 3, limit: 3 })
    expect(sink.reset).toHaveBeenLastCalledWith('old---new')
    expect(log.startOffset.value).toBe(0)
  })
})
