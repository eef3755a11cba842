import type { Agent, GpuInfo } from '@/api'

/** Cores the agent has handed out: total minus still available, never below zero. */
export function coresInUse(agent: Pick<Agent, 'cpu_cores' | 'available_cpu_cores'>): number {
  const total = agent.cpu_cores ?? 0
  const available = agent.available_cpu_cores ?? 0
  return Math.max(0, total - available)
}

/** GPU memory use as a 0–100 percentage for a progress bar. */
export function gpuMemoryPercent(gpu: Pick<GpuInfo, 'memory_used' | 'memory_total'>): number {
  if (!gpu.memory_total || gpu.memory_total <= 0) return 0
  return Math.min(100, Math.max(0, Math.round((gpu.memory_used / gpu.memory_total) * 1000) / 10))
}
