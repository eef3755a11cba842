/** A task's usage samples as the columns a chart draws: one time axis, one column per line. */
import type { UsageSample } from '@/api'

export interface ChartSeries {
  /** Unix seconds (charts show them in the viewer's time zone). */
  times: number[]
  /** Line label → one value per time (null where a sample has no reading for it). */
  lines: { label: string; values: (number | null)[] }[]
}

export interface UsageCharts {
  cpu: ChartSeries
  memory: ChartSeries
  /** Empty when no sample had a GPU. */
  gpuUtil: ChartSeries
  gpuMemory: ChartSeries
}

function gpuIndexes(samples: UsageSample[]): number[] {
  const found = new Set<number>()
  for (const sample of samples) for (const gpu of sample.gpus) found.add(gpu.index)
  return [...found].sort((a, b) => a - b)
}

function gpuSeries(samples: UsageSample[], times: number[], field: 'utilization' | 'memory_used_mib'): ChartSeries {
  const lines = gpuIndexes(samples).map((index) => ({
    label: `GPU ${index}`,
    values: samples.map((s) => s.gpus.find((g) => g.index === index)?.[field] ?? null),
  }))
  return { times: lines.length ? times : [], lines }
}

/** Splits samples (oldest first) into the four charts; samples with an unreadable time are dropped. */
export function usageCharts(samples: UsageSample[]): UsageCharts {
  const usable = samples.filter((s) => Number.isFinite(Date.parse(s.time)))
  const times = usable.map((s) => Date.parse(s.time) / 1000)
  return {
    cpu: { times, lines: [{ label: 'CPU %', values: usable.map((s) => s.cpu_percent) }] },
    memory: { times, lines: [{ label: 'MiB', values: usable.map((s) => s.memory_mib) }] },
    gpuUtil: gpuSeries(usable, times, 'utilization'),
    gpuMemory: gpuSeries(usable, times, 'memory_used_mib'),
  }
}
