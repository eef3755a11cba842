import { describe, expect, it } from 'vitest'
import { MAX_WINDOW_BYTES, offsetAtPercent, pageBefore, percentOf, startAtLine, trimWindow } from '@/utils/logWindow'
import { formatBytes } from '@/utils/format'

describe('log window paging', () => {
  it('the page before always moves towards the start, and is empty only there', () => {
    expect(pageBefore(1000, 256)).toEqual({ offset: 744, limit: 256 })
    expect(pageBefore(100, 256)).toEqual({ offset: 0, limit: 100 })
    expect(pageBefore(0, 256)).toEqual({ offset: 0, limit: 0 })
  })

  it('a position in percent shows a whole page, never past the end', () => {
    expect(offsetAtPercent(0, 50_000_000, 1000)).toBe(0)
    expect(offsetAtPercent(50, 50_000_000, 1000)).toBe(25_000_000)
    expect(offsetAtPercent(100, 50_000_000, 1000)).toBe(49_999_000)
    expect(offsetAtPercent(150, 500, 1000)).toBe(0)
    expect(percentOf(25_000_000, 50_000_000)).toBe(50)
    expect(percentOf(0, 0)).toBe(0)
  })

  it('starts a page at its first whole line, counting the bytes dropped', () => {
    expect(startAtLine('ne 1\nline 2\n', 10)).toEqual({ text: 'line 2\n', offset: 15 })
    expect(startAtLine('中文\nok\n', 10)).toEqual({ text: 'ok\n', offset: 17 })
    expect(startAtLine('line 1\nline 2\n', 0)).toEqual({ text: 'line 1\nline 2\n', offset: 0 })
    expect(startAtLine('no newline', 10)).toEqual({ text: 'no newline', offset: 10 })
    expect(startAtLine('\ufffd bad\nok\n', 10)).toEqual({ text: '\ufffd bad\nok\n', offset: 10 }) // bytes unknown
  })

  it('drops the oldest pieces until the window fits, keeping the newest', () => {
    const pieces = [{ end: 100, chars: 100 }, { end: 200, chars: 90 }, { end: 300, chars: 100 }]
    expect(trimWindow(0, pieces, 300)).toEqual({ count: 0, chars: 0, start: 0 })
    expect(trimWindow(0, pieces, 150)).toEqual({ count: 2, chars: 190, start: 200 })
    expect(trimWindow(0, pieces, 10)).toEqual({ count: 2, chars: 190, start: 200 })
    expect(MAX_WINDOW_BYTES).toBeGreaterThan(0)
  })

  it('formats byte counts', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(52_428_800)).toBe('50.0 MiB')
  })
})
