import { describe, expect, it } from 'vitest'
import type { TaskProgress } from '@/api'
import { formatEta, formatRate, progressParts, progressPercent } from '@/utils/progress'

const bar = (fields: Partial<TaskProgress> = {}): TaskProgress => ({
  percent: 45, current: 450, total: 1000, eta_s: 100, rate: 80, updated_time: '2026-11-27T08:00:00+00:00', ...fields,
})

describe('formatEta', () => {
  it('uses at most two units', () => {
    expect(formatEta(0)).toBe('0s')
    expect(formatEta(40)).toBe('40s')
    expect(formatEta(100)).toBe('1m40s')
    expect(formatEta(3600 + 5 * 60 + 59)).toBe('1h05m')
    expect(formatEta(3 * 86400 + 4 * 3600 + 10)).toBe('3d04h')
  })

  it('is empty when unknown', () => {
    expect(formatEta(null)).toBe('')
    expect(formatEta(undefined)).toBe('')
    expect(formatEta(-1)).toBe('')
    expect(formatEta(Number.NaN)).toBe('')
  })
})

describe('formatRate', () => {
  it('writes units per second, or seconds per unit when slower', () => {
    expect(formatRate(80)).toBe('80.0 it/s')
    expect(formatRate(5.41)).toBe('5.4 it/s')
    expect(formatRate(1234.5)).toBe('1235 it/s')
    expect(formatRate(0.08)).toBe('12.5 s/it')
    expect(formatRate(0)).toBe('')
    expect(formatRate(null)).toBe('')
  })
})

describe('progress parts', () => {
  it('shows percent, count, ETA and rate while it runs', () => {
    expect(progressParts(bar(), true)).toEqual({ percent: '45%', count: '450/1000', eta: '1m40s', rate: '80.0 it/s' })
  })

  it('drops ETA and rate once it no longer runs', () => {
    expect(progressParts(bar(), false)).toEqual({ percent: '45%', count: '450/1000', eta: '', rate: '' })
  })

  it('handles a bare percent (no count) and a count without percent', () => {
    expect(progressParts(bar({ current: null, total: null, eta_s: null, rate: null, percent: 62.5 }), true))
      .toEqual({ percent: '62%', count: '', eta: '', rate: '' })
    expect(progressPercent(bar({ percent: null, current: 250, total: 1000 }))).toBe(25)
    expect(progressPercent(bar({ percent: 140 }))).toBe(100)
    expect(progressPercent(null)).toBeNull()
    expect(progressPercent(bar({ percent: null, total: null }))).toBeNull()
  })
})
