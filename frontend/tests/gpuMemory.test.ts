import { describe, expect, it } from 'vitest'
import { formatGib, gpuMemoryChoices, gpuMemoryMib, parseGpuMemory } from '@/utils/gpuMemory'

describe('GPU memory sizes', () => {
  it('shows GiB with one decimal', () => {
    expect(formatGib(81559)).toBe('79.6 GiB')
    expect(formatGib(143771)).toBe('140.4 GiB')
    expect(formatGib(81920)).toBe('80.0 GiB')
  })

  it('reads typed sizes in GiB (a bare number too) or whole MiB', () => {
    expect(parseGpuMemory('40')).toBe(40960)
    expect(parseGpuMemory('40 GiB')).toBe(40960)
    expect(parseGpuMemory('39.5g')).toBe(40448)
    expect(parseGpuMemory('40GB')).toBe(40960)
    expect(parseGpuMemory('20000 MiB')).toBe(20000)
    expect(parseGpuMemory('20000m')).toBe(20000)
    expect(parseGpuMemory('0')).toBe(0)
    for (const bad of ['-1', '2.5 MiB', 'lots', '40 TB', '']) expect(parseGpuMemory(bad)).toBeNull()
  })

  it('takes the form value as MiB: a number as is, text read, blank as a whole GPU', () => {
    expect(gpuMemoryMib(81559)).toBe(81559)
    expect(gpuMemoryMib('1 GiB')).toBe(1024)
    expect(gpuMemoryMib('')).toBe(0)
    expect(gpuMemoryMib(-5)).toBeNull()
    expect(gpuMemoryMib('x')).toBeNull()
  })

  it('offers each size the online agents report once, largest first, and the current size', () => {
    const gpu = (memory_total: number) => ({ index: 0, name: 'g', uuid: 'u', utilization: 0, memory_used: 0, memory_total, simulated: true })
    const agents = [
      { status: 'online', gpu_info: [gpu(81559), gpu(81559)] },
      { status: 'online', gpu_info: [gpu(143771)] },
      { status: 'offline', gpu_info: [gpu(24576)] },
    ] as Parameters<typeof gpuMemoryChoices>[0]
    expect(gpuMemoryChoices(agents)).toEqual([143771, 81559])
    expect(gpuMemoryChoices(agents, 20000)).toEqual([143771, 81559, 20000])
    expect(gpuMemoryChoices(null)).toEqual([])
  })
})
