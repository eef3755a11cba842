import { describe, expect, it } from 'vitest'
import type { Agent } from '@/api'
import { agentCanRun, capacityShortfall, eligibleAgents, formatGpuSize, historyOf, reservationOf } from '@/utils/agents'

type Box = Parameters<typeof agentCanRun>[0]

function box(cores: number, gpus: number[], fields: Partial<Box> = {}): Box {
  return {
    type: 'main', status: 'online', draining: false, disk_problem: null, cpu_cores: cores,
    gpu_info: gpus.map((mib, index) => ({ index, memory_total: mib, memory_used: 0, utilization: 0, name: 'GPU', uuid: '', simulated: true })),
    ...fields,
  }
}

const request = (cpuCores: number, gpuCount = 0, gpuMemoryMib = 0) => ({ cpuCores, gpuCount, gpuMemoryMib })

describe('could any agent run it', () => {
  const agents = [box(8, [81920, 81920, 81920, 81920]), box(32, [24576])]

  it('fits when one agent has enough of everything at once', () => {
    expect(capacityShortfall(agents, request(16))).toBeNull()
    expect(capacityShortfall(agents, request(4, 4, 40 * 1024))).toBeNull()
    expect(capacityShortfall(agents, request(0, 1, 80 * 1024))).toBeNull()
  })

  it('names what the largest have when none could', () => {
    expect(capacityShortfall(agents, request(64))).toEqual({ cores: 32, gpus: 4, gpuMemoryMib: 81920 })
    expect(capacityShortfall(agents, request(1, 8))).toEqual({ cores: 32, gpus: 4, gpuMemoryMib: 81920 })
    expect(capacityShortfall(agents, request(1, 1, 96 * 1024))).not.toBeNull()
    // each part fits some agent, but no single agent has 16 cores and 4 GPUs
    expect(capacityShortfall(agents, request(16, 4))).not.toBeNull()
  })

  it('counts only GPUs big enough for the memory asked', () => {
    expect(agentCanRun(box(8, [24576, 81920]), request(1, 2, 40 * 1024))).toBe(false)
    expect(agentCanRun(box(8, [24576, 81920]), request(1, 2, 0))).toBe(true)
  })

  it('ignores offline, draining, disk-full and sub agents', () => {
    const others = [
      box(64, [], { status: 'offline' }), box(64, [], { draining: true }), box(64, [], { disk_problem: 'full' }),
      box(64, [], { type: 'sub' }),
    ]
    expect(eligibleAgents(others)).toEqual([])
    expect(capacityShortfall(others, request(1))).toEqual({ none: true })
    expect(capacityShortfall([...others, box(4, [])], request(16))).toEqual({ cores: 4, gpus: 0, gpuMemoryMib: 0 })
  })

  it('writes GPU sizes as the server does', () => {
    expect(formatGpuSize(81920)).toBe('80 GiB')
    expect(formatGpuSize(512)).toBe('512 MiB')
  })
})

describe('reservations and history per GPU', () => {
  const agent = {
    gpu_reservations: [
      { index: 0, reserved_mib: 0, whole: true, task_ids: [7] },
      { index: 1, reserved_mib: 0, whole: false, task_ids: [] },
    ],
    gpu_history: [{ index: 1, utilization: [null, 20, 30] }],
  } as Pick<Agent, 'gpu_reservations' | 'gpu_history'>

  it('finds a held GPU and its history, nothing otherwise', () => {
    expect(reservationOf(agent, 0)?.task_ids).toEqual([7])
    expect(reservationOf(agent, 1)).toBeUndefined()
    expect(historyOf(agent, 1)).toEqual([null, 20, 30])
    expect(historyOf(agent, 0)).toEqual([])
    expect(historyOf({}, 0)).toEqual([])
  })
})
