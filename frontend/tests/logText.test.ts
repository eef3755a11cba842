import { describe, expect, it } from 'vitest'
import { appendChunk } from '@/utils/logText'

describe('appendChunk', () => {
  it('appends a frame that starts where the log ends, up to the end the server gave', () => {
    expect(appendChunk(10, { offset: 10, end: 13, data: 'abc' })).toEqual({ text: 'abc', nextOffset: 13, resync: false })
  })

  it('takes the end from the server, not from the text: U+FFFD stands for one stored byte here', () => {
    // Stored: "a" 0xff "b" (3 bytes); the text re-encodes to 5 bytes.
    expect(appendChunk(0, { offset: 0, end: 3, data: 'a\ufffdb' })).toEqual({ text: 'a\ufffdb', nextOffset: 3, resync: false })
  })

  it('drops a frame that was already received', () => {
    expect(appendChunk(10, { offset: 5, end: 8, data: 'abc' })).toEqual({ text: '', nextOffset: 10, resync: false })
    expect(appendChunk(10, { offset: 7, end: 10, data: 'abc' })).toEqual({ text: '', nextOffset: 10, resync: false })
  })

  it('asks to resync rather than guess where an overlapping frame\'s text is cut', () => {
    expect(appendChunk(2, { offset: 0, end: 4, data: '\ufffd\ufffdxy' })).toEqual({ text: '', nextOffset: 2, resync: true })
  })

  it('asks to resync after a gap instead of showing text with a hole before it', () => {
    expect(appendChunk(10, { offset: 12, end: 13, data: 'z' })).toEqual({ text: '', nextOffset: 10, resync: true })
  })
})
