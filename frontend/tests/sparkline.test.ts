import { describe, expect, it } from 'vitest'
import { lastReading, sparklinePath } from '@/utils/sparkline'

describe('sparklinePath', () => {
  it('spreads the readings across the width, 100 % at the top', () => {
    expect(sparklinePath([0, 50, 100], 100, 20)).toBe('M0,20 L50,10 L100,0')
  })

  it('leaves a gap where there was no reading', () => {
    expect(sparklinePath([10, 20, null, null, 40, 50], 50, 10)).toBe('M0,9 L10,8 M40,6 L50,5')
  })

  it('draws a lone reading as a dot and clamps out-of-range values', () => {
    expect(sparklinePath([null, 150, null], 10, 10)).toBe('M5,0 L5,0')
    expect(sparklinePath([-5, 50], 10, 10)).toBe('M0,10 L10,5')
  })

  it('is empty without readings', () => {
    expect(sparklinePath([], 100, 20)).toBe('')
    expect(sparklinePath([null, null], 100, 20)).toBe('')
  })

  it('finds the latest reading', () => {
    expect(lastReading([10, 20, null])).toBe(20)
    expect(lastReading([null])).toBeNull()
  })
})
