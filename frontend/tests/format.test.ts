import { describe, expect, it } from 'vitest'
import { formatDateTime, formatDuration, formatMiB, formatPercent } from '@/utils/format'

describe('formatDateTime', () => {
  const utc = '2026-11-27T08:00:05+00:00'

  it('shows a UTC timestamp in the given time zone', () => {
    expect(formatDateTime(utc, 'UTC')).toBe('2026-11-27 08:00:05')
    expect(formatDateTime(utc, 'Asia/Shanghai')).toBe('2026-11-27 16:00:05')
    expect(formatDateTime(utc, 'America/New_York')).toBe('2026-11-27 03:00:05')
  })

  it('crosses the date line correctly', () => {
    expect(formatDateTime('2026-11-27T20:30:00+00:00', 'Asia/Tokyo')).toBe('2026-11-28 05:30:00')
  })

  it('uses 00 for midnight, not 24', () => {
    expect(formatDateTime('2026-01-01T00:00:00+00:00', 'UTC')).toBe('2026-01-01 00:00:00')
  })

  it('shows a dash for missing or broken values', () => {
    expect(formatDateTime(null)).toBe('—')
    expect(formatDateTime('not a date')).toBe('—')
  })
})

describe('small formatters', () => {
  it('formats durations', () => {
    expect(formatDuration(65)).toBe('01:05')
    expect(formatDuration(3723)).toBe('01:02:03')
    expect(formatDuration(90061)).toBe('1d 01:01:01')
    expect(formatDuration(null)).toBe('—')
  })

  it('formats sizes and percentages', () => {
    expect(formatMiB(512)).toBe('512 MiB')
    expect(formatMiB(81920)).toBe('80.0 GiB')
    expect(formatPercent(12.345)).toBe('12.3%')
    expect(formatPercent(null)).toBe('—')
  })
})
