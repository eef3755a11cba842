import { describe, expect, it } from 'vitest'
import type { UsageSample } from '@/api'
import { NODE_HEIGHT, layoutGraph } from '@/utils/graphLayout'
import { usageCharts } from '@/utils/usageSeries'

describe('usageCharts', () => {
  const samples: UsageSample[] = [
    { time: '2026-11-27T08:00:00+00:00', cpu_percent: 50, memory_mib: 100, gpus: [] },
    { time: '2026-11-27T08:00:02+00:00', cpu_percent: 120, memory_mib: 150, gpus: [{ index: 1, utilization: 90, memory_used_mib: 4000 }] },
    { time: 'broken', cpu_percent: 1, memory_mib: 1, gpus: [] },
  ]

  it('makes one time axis (unix seconds) and a line per GPU, with gaps where a GPU had no reading', () => {
    const charts = usageCharts(samples)
    const t0 = Date.parse('2026-11-27T08:00:00Z') / 1000
    expect(charts.cpu).toEqual({ times: [t0, t0 + 2], lines: [{ label: 'CPU %', values: [50, 120] }] })
    expect(charts.memory.lines[0].values).toEqual([100, 150])
    expect(charts.gpuUtil.lines).toEqual([{ label: 'GPU 1', values: [null, 90] }])
    expect(charts.gpuMemory.lines).toEqual([{ label: 'GPU 1', values: [null, 4000] }])
  })

  it('has no GPU lines for a task without GPUs', () => {
    const charts = usageCharts(samples.slice(0, 1))
    expect(charts.gpuUtil).toEqual({ times: [], lines: [] })
  })
})

describe('layoutGraph', () => {
  it('puts each dependency above the task that waits for it', () => {
    const layout = layoutGraph({
      nodes: [
        { id: 3, name: 'c', status: 'blocked' },
        { id: 1, name: 'a', status: 'completed' },
        { id: 2, name: 'b', status: 'running' },
      ],
      edges: [{ from: 1, to: 2 }, { from: 2, to: 3 }, { from: 2, to: 99 }],
    })
    const y = Object.fromEntries(layout.nodes.map((n) => [n.id, n.y]))
    expect(y[1]).toBeLessThan(y[2])
    expect(y[2]).toBeLessThan(y[3])
    expect(y[2] - y[1]).toBeGreaterThanOrEqual(NODE_HEIGHT)
    expect(layout.edges).toEqual([{ from: 1, to: 2 }, { from: 2, to: 3 }]) // an edge to a node left out is dropped
    expect(layout.height).toBeGreaterThan(3 * NODE_HEIGHT)
  })
})
