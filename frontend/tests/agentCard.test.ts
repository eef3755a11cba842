import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import type { Agent } from '@/api'
import AgentCard from '@/components/agents/AgentCard.vue'
import { i18n } from '@/i18n'
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
      { index: 0, name: 'Sim A100', utilization: 77, memory_used: 40960, memory_total: 81920, simulated: true },
      { index: 1, name: 'Sim A100', utilization: 0, memory_used: 0, memory_total: 81920, simulated: true },
    ],
    is_simulated_gpu: true,
    sub_agents: [],
    ...overrides,
  }
}

describe('coresInUse', () => {
  it('is total minus available', () => {
    expect(coresInUse({ cpu_cores: 16, available_cpu_cores: 10 })).toBe(6)
  })

  it('treats missing values as zero and never goes negative', () => {
    expect(coresInUse({ cpu_cores: 4, available_cpu_cores: null })).toBe(4)
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
