import { describe, expect, it } from 'vitest'
import { appendChunk, byteLength } from '@/utils/logText'

describe('appendChunk', () => {
  it('appends a chunk that starts where the log ends', () => {
    expect(appendChunk(10, 10, 'abc')).toEqual({ text: 'abc', nextOffset: 13, gap: false })
  })

  it('drops a chunk that was already received', () => {
    expect(appendChunk(10, 5, 'abc')).toEqual({ text: '', nextOffset: 10, gap: false })
  })

  it('keeps only the new part of an overlapping chunk, counting UTF-8 bytes', () => {
    // "é" is two bytes: offsets 0-1 are "é", 2 is "x".
    expect(byteLength('éx')).toBe(3)
    expect(appendChunk(2, 0, 'éxy')).toEqual({ text: 'xy', nextOffset: 4, gap: false })
  })

  it('flags a gap but still shows the chunk', () => {
    expect(appendChunk(10, 12, 'z')).toEqual({ text: 'z', nextOffset: 13, gap: true })
  })
})
