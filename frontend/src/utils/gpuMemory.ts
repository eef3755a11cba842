/**
 * GPU memory for the task form: the sizes the online agents report, a custom size typed in MiB or GiB, and
 * 0 for a whole GPU. Always GiB for people (79.6 GiB), and the exact MiB for the server.
 */
import type { Agent } from '@/api'

const MIB_PER_GIB = 1024

/** `79.6 GiB` (one decimal). */
export function formatGib(mib: number): string {
  return `${(mib / MIB_PER_GIB).toFixed(1)} GiB`
}

/**
 * A typed size in MiB: `40`, `40 GiB`, `39.5g`, `40GB` are GiB (a bare number too); `20000 MiB`, `20000m`
 * are MiB. Null when it is not a size of 0 or more, or MiB are not whole.
 */
export function parseGpuMemory(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m)?\s*$/i.exec(text)
  if (!match) return null
  const value = Number(match[1])
  const unit = (match[2] ?? 'g').toLowerCase()
  if (unit.startsWith('m')) return Number.isInteger(value) ? value : null
  return Math.round(value * MIB_PER_GIB)
}

/** The form's value (MiB chosen from the list, or text typed) in MiB, or null when the text is not a size. */
export function gpuMemoryMib(value: number | string | null | undefined): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : null
  if (value === null || value === undefined || value === '') return 0
  return parseGpuMemory(value)
}

/** The GPU sizes of the online agents, largest first, each once; plus `current` when it is not among them. */
export function gpuMemoryChoices(agents: Pick<Agent, 'status' | 'gpu_info'>[] | null | undefined, current?: number | null): number[] {
  const sizes = new Set<number>()
  for (const agent of agents ?? []) {
    if (agent.status !== 'online') continue
    for (const gpu of agent.gpu_info ?? []) if (gpu.memory_total) sizes.add(gpu.memory_total)
  }
  if (current) sizes.add(current)
  return [...sizes].sort((a, b) => b - a)
}
