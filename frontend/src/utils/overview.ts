import type { Agent } from '@/api'

/** GPUs of the online main agents, and how many of them hold a task now (whole or shared). */
export function gpuSummary(mains: Pick<Agent, 'status' | 'gpu_info' | 'gpu_reservations'>[]): { busy: number; total: number } {
  let busy = 0
  let total = 0
  for (const main of mains) {
    if (main.status !== 'online') continue
    const held = new Set((main.gpu_reservations ?? []).filter((r) => r.task_ids.length > 0).map((r) => r.index))
    for (const gpu of main.gpu_info ?? []) {
      total += 1
      if (held.has(gpu.index)) busy += 1
    }
  }
  return { busy, total }
}
