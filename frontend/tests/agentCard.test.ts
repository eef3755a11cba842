import { beforeEach, describe, expect, it, vi } from 'vitest'
import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import * as api from '@/api'
import type { Agent } from '@/api'
import AgentCard from '@/components/agents/AgentCard.vue'
import { i18n } from '@/i18n'
import { useAgentsStore } from '@/store/agents'
import { coresInUse, gpuMemoryPercent } from '@/utils/agents'

function agent(overrides: Partial<Agent> = {}): Agent {
  return {
    id: 'main-1',
    name: 'box-a',
    type: 'main',
    status: 'online',
    created_time: '2026-11-27T08:00:00+00:00',
    last_heartbeat_time: '2026-11-27T08:10:00+00:00',
    running_time: 600,
    cpu_cores: 16,
    available_cpu_cores: 10,
    cpu_usage: 42.5,
    memory_usage: 30,
    memory_used_mib: 4096,
    memory_total_mib: 16384,
    gpu_info: [
      { index: 0, name: 'Sim A100', uuid: 'GPU-sim-0', utilization: 77, memory_used: 40960, memory_total: 81920, simulated: true },
      { index: 1, name: 'Sim A100', uuid: 'GPU-sim-1', utilization: 0, memory_used: 0, memory_total: 81920, simulated: true },
    ],
    is_simulated_gpu: true,
    hostname: 'box-a.local',
    task_id: null,
    main_agent_id: null,
    monitor_file: '',
    draining: false,
    disk_problem: null,
    sub_agents: [],
    ...overrides,
  }
}

describe('coresInUse', () => {
  it('is total minus available', () => {
    expect(coresInUse({ cpu_cores: 16, available_cpu_cores: 10 })).toBe(6)
  })

  it('never goes negative', () => {
    expect(coresInUse({ cpu_cores: 2, available_cpu_cores: 5 })).toBe(0)
  })

  it('computes GPU memory percentages safely', () => {
    expect(gpuMemoryPercent({ memory_used: 40960, memory_total: 81920 })).toBe(50)
    expect(gpuMemoryPercent({ memory_used: 5, memory_total: 0 })).toBe(0)
  })
})

describe('AgentCard', () => {
  const mountCard = (a: Agent) => mount(AgentCard, { props: { agent: a }, global: { plugins: [i18n] } })

  it('shows cores in use over total, and one bar per GPU', () => {
    const wrapper = mountCard(agent())
    expect(wrapper.get('[data-testid="agent-cores"]').text()).toBe('6 / 16')
    expect(wrapper.findAll('[data-testid="gpu-bar"]')).toHaveLength(2)
    expect(wrapper.get('[data-testid="agent-card-main-1"]').attributes('data-status')).toBe('online')
    expect(wrapper.find('[data-testid="agent-simulated"]').exists()).toBe(true)
  })

  it('lets a sub-agent open its task', async () => {
    const wrapper = mountCard(agent({ id: 'sub-7', type: 'sub', task_id: 7, is_simulated_gpu: false }))
    await wrapper.get('[data-testid="agent-task-link-sub-7"]').trigger('click')
    expect(wrapper.emitted('open-task')).toEqual([[7]])
  })
})

describe('AgentCard GPU reservations', () => {
  const mountCard = (a: Agent) => mount(AgentCard, { props: { agent: a }, global: { plugins: [i18n] } })

  it('shows reserved memory, whole GPUs and their tasks as links that open them', async () => {
    const wrapper = mountCard(agent({
      gpu_reservations: [
        { index: 0, reserved_mib: 40960, whole: false, task_ids: [11, 12] },
        { index: 1, reserved_mib: 0, whole: true, task_ids: [13] },
      ],
      gpu_history: [{ index: 0, utilization: [null, 10, 80] }],
    }))
    const bars = wrapper.findAll('[data-testid="gpu-bar"]')
    expect(bars[0].get('[data-testid="gpu-reserved"]').text()).toBe('reserved 40.0 GiB')
    expect(bars[0].get('[data-testid="gpu-holders"]').text()).toBe('#11, #12')
    expect(bars[1].get('[data-testid="gpu-reserved"]').text()).toBe('whole GPU')
    expect(bars[1].attributes('data-whole')).toBe('true')
    expect(bars[0].get('[data-testid="gpu-sparkline"]').attributes('data-readings')).toBe('2')
    expect(bars[1].find('[data-testid="gpu-sparkline"]').exists()).toBe(false)
    await bars[1].get('[data-testid="task-link-13"]').trigger('click')
    expect(wrapper.emitted('open-task')).toEqual([[13]])
  })

  it('shows no reservation row for a GPU nobody holds', () => {
    const wrapper = mountCard(agent({ gpu_reservations: [] }))
    expect(wrapper.find('[data-testid="gpu-reservation"]').exists()).toBe(false)
  })
})

describe('AgentCard actions', () => {
  const mountCard = (a: Agent) => mount(AgentCard, { props: { agent: a }, global: { plugins: [i18n] } })
  const shown = (wrapper: ReturnType<typeof mountCard>) =>
    ['agent-drain', 'agent-resume', 'agent-forget', 'agent-draining'].filter((id) =>
      wrapper.find(`[data-testid="${id}"]`).exists(),
    )

  it('offers Drain on an online main agent, and emits it with the agent', async () => {
    const a = agent()
    const wrapper = mountCard(a)
    expect(shown(wrapper)).toEqual(['agent-drain'])
    expect(wrapper.get('[data-testid="agent-drain"]').text()).toBe('Drain')
    await wrapper.get('[data-testid="agent-drain"]').trigger('click')
    expect(wrapper.emitted('drain')).toEqual([[a]])
  })

  it('shows the draining tag and offers Resume on a draining agent', async () => {
    const a = agent({ draining: true })
    const wrapper = mountCard(a)
    expect(shown(wrapper)).toEqual(['agent-resume', 'agent-draining'])
    expect(wrapper.get('[data-testid="agent-card-main-1"]').attributes('data-draining')).toBe('true')
    await wrapper.get('[data-testid="agent-resume"]').trigger('click')
    expect(wrapper.emitted('resume')).toEqual([[a]])
  })

  it('offers Forget only on an offline main agent', async () => {
    const a = agent({ status: 'offline' })
    const wrapper = mountCard(a)
    expect(shown(wrapper)).toEqual(['agent-drain', 'agent-forget'])
    await wrapper.get('[data-testid="agent-forget"]').trigger('click')
    expect(wrapper.emitted('forget')).toEqual([[a]])
  })

  it("labels the main agent's CPU as the machine's and a sub-agent's as the task's, per core summed", () => {
    const label = (a: Agent) => {
      const cpu = mountCard(a).get('[data-testid="agent-cpu"]')
      return [cpu.element.closest('td, .el-descriptions__cell')?.textContent?.replace(/\s+/g, ' ').trim(), cpu.attributes('data-scope')]
    }
    const [main, mainScope] = label(agent())
    expect(main).toContain('CPU (machine)')
    expect(mainScope).toBe('machine')
    const [sub, subScope] = label(agent({ id: 'sub-7', type: 'sub', task_id: 7, cpu_usage: 180 }))
    expect(sub).toContain('CPU (task, per core)')
    expect(sub).toContain('180.0%')
    expect(subScope).toBe('task')
  })

  it("shows an offline main agent's 'offline since' instead of a running clock", () => {
    const offline = mountCard(agent({ status: 'offline' }))
    expect(offline.find('[data-testid="agent-running-time"]').exists()).toBe(false)
    expect(offline.get('[data-testid="agent-card-offline-since"]').text()).toMatch(/^offline since /)
    expect(mountCard(agent()).find('[data-testid="agent-running-time"]').exists()).toBe(true)
  })

  it('offers nothing on a sub-agent, online or not', () => {
    for (const status of ['online', 'offline'] as const) {
      expect(shown(mountCard(agent({ id: 'sub-7', type: 'sub', task_id: 7, status })))).toEqual([])
    }
  })
})

describe('agents store actions', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.restoreAllMocks()
  })

  const sub = agent({ id: 'sub-7', type: 'sub', task_id: 7 })
  const listed = () => [agent({ sub_agents: [sub] }), agent({ id: 'main-2', status: 'offline' })]

  it('drain and resume put the answer in place and keep the listed sub-agents', async () => {
    const store = useAgentsStore()
    store.mains = listed()
    const drainAgent = vi.spyOn(api, 'drainAgent').mockResolvedValue(agent({ draining: true, sub_agents: [] }))
    await store.drain('main-1')
    expect(drainAgent).toHaveBeenCalledWith('main-1')
    expect(store.mains[0]).toMatchObject({ id: 'main-1', draining: true, sub_agents: [sub] })
    const resumeAgent = vi.spyOn(api, 'resumeAgent').mockResolvedValue(agent({ draining: false }))
    await store.resume('main-1')
    expect(resumeAgent).toHaveBeenCalledWith('main-1')
    expect(store.mains[0].draining).toBe(false)
  })

  it('forget drops the agent from the list, and passes a refusal on untouched', async () => {
    const store = useAgentsStore()
    store.mains = listed()
    const forgetAgent = vi.spyOn(api, 'forgetAgent')
    forgetAgent.mockRejectedValueOnce(new api.ApiError(409, 'agent_online', 'Agent main-2 is online.'))
    await expect(store.forget('main-2')).rejects.toMatchObject({ status: 409, code: 'agent_online' })
    expect(store.mains).toHaveLength(2)
    forgetAgent.mockResolvedValueOnce(undefined)
    await store.forget('main-2')
    expect(forgetAgent).toHaveBeenLastCalledWith('main-2')
    expect(store.mains.map((m) => m.id)).toEqual(['main-1'])
  })
})
