import { describe, expect, it } from 'vitest'
import { MAX_TIME_LIMIT_S, formatLimit, parseDuration } from '@/utils/duration'

describe('parseDuration', () => {
  it.each([
    ['2h30m', 9000],
    ['90m', 5400],
    ['45s', 45],
    ['1d', 86400],
    ['1d 2h 3m 4s', 93784],
    ['2H30M', 9000],
    [' 120 ', 120],
    ['0', 0],
  ])('reads %j as %i seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds)
  })

  it('treats a blank field as no limit', () => {
    expect(parseDuration('')).toBe(0)
    expect(parseDuration('   ')).toBe(0)
  })

  it.each(['abc', '1.5h', '30m2h', '-5m', '2 hours', 'h', '1w', '5m5m'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeNull()
  })
})

describe('formatLimit', () => {
  it('writes seconds the way parseDuration reads them', () => {
    expect(formatLimit(9000)).toBe('2h30m')
    expect(formatLimit(5400)).toBe('1h30m')
    expect(formatLimit(45)).toBe('45s')
    expect(formatLimit(86400)).toBe('1d')
    expect(formatLimit(93784)).toBe('1d2h3m4s')
    for (const seconds of [1, 59, 61, 3599, 86399, 90061, MAX_TIME_LIMIT_S]) {
      expect(parseDuration(formatLimit(seconds))).toBe(seconds)
    }
  })

  it('gives an empty text for no limit', () => {
    expect(formatLimit(0)).toBe('')
    expect(formatLimit(null)).toBe('')
  })
})
