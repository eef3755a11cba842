import type { Agent, GpuInfo, GpuReservation } from '@/api'

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

/** What a task asks for, in the units the server uses (GPU memory in MiB per GPU; 0 = whole GPUs). */
export interface ResourceRequest {
  cpuCores: number
  gpuCount: number
  gpuMemoryMib: number
}

/** The most any one eligible agent has of each: cores, GPUs, and memory of its largest GPU (MiB). */
export interface LargestAgent {
  cores: number
  gpus: number
  gpuMemoryMib: number
}

type CapacityAgent = Pick<Agent, 'type' | 'status' | 'draining' | 'disk_problem' | 'cpu_cores' | 'gpu_info'>

/** Main agents that take tasks now: online, not draining, disk fine (as the server's scheduler sees them). */
export function eligibleAgents<T extends CapacityAgent>(agents: T[]): T[] {
  return agents.filter((a) => a.type === 'main' && a.status === 'online' && !a.draining && !a.disk_problem)
}

/** Whether the agent could ever hold the task, with nothing else running on it. */
export function agentCanRun(agent: CapacityAgent, request: ResourceRequest): boolean {
  if (request.cpuCores > (agent.cpu_cores ?? 0)) return false
  if (!request.gpuCount) return true
  const able = (agent.gpu_info ?? []).filter((gpu) => (gpu.memory_total ?? 0) >= request.gpuMemoryMib)
  return able.length >= request.gpuCount
}

/**
 * Null when some eligible agent could run the task; otherwise what the largest ones have (each
 * dimension's maximum, as the server's "no online agent can run it" reason says), or `{ none }` when no
 * agent takes tasks at all.
 */
export function capacityShortfall(agents: CapacityAgent[], request: ResourceRequest): LargestAgent | { none: true } | null {
  const eligible = eligibleAgents(agents)
  if (!eligible.length) return { none: true }
  if (eligible.some((agent) => agentCanRun(agent, request))) return null
  return {
    cores: Math.max(...eligible.map((a) => a.cpu_cores ?? 0)),
    gpus: Math.max(...eligible.map((a) => a.gpu_info?.length ?? 0)),
    gpuMemoryMib: Math.max(0, ...eligible.flatMap((a) => (a.gpu_info ?? []).map((gpu) => gpu.memory_total ?? 0))),
  }
}

/** A GPU size as the server writes it in reasons: whole GiB from 1 GiB up, else MiB. */
export function formatGpuSize(mib: number): string {
  return mib >= 1024 ? `${Math.round(mib / 1024)} GiB` : `${mib} MiB`
}

/** The reservation of one GPU of a main agent, if tasks hold it. */
export function reservationOf(agent: Pick<Agent, 'gpu_reservations'>, index: number): GpuReservation | undefined {
  return agent.gpu_reservations?.find((r) => r.index === index && r.task_ids.length > 0)
}

/** The GPU's utilisation over the last 10 minutes (oldest first), or an empty list. */
export function historyOf(agent: Pick<Agent, 'gpu_history'>, index: number): (number | null)[] {
  return agent.gpu_history?.find((h) => h.index === index)?.utilization ?? []
}

/** The name of agent `id` among the main agents and their sub-agents, if it is listed. */
export function agentNameOf(mains: Pick<Agent, 'id' | 'name' | 'sub_agents'>[], id: string | null | undefined): string | null {
  if (!id) return null
  for (const main of mains) {
    if (main.id === id) return main.name
    const sub = main.sub_agents?.find((s) => s.id === id)
    if (sub) return sub.name
  }
  return null
}
