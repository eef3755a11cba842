import { describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import type { Task } from '@/api'
import TaskTable from '@/components/tasks/TaskTable.vue'
import { i18n } from '@/i18n'

function task(overrides: Partial<Task> = {}): Task {
  return {
    id: 7,
    name: 'train',
    template_type: 'custom',
    priority: 3,
    depends_on: [],
    status: 'running',
    created_time: '2026-11-27T08:00:00+00:00',
    script_content: 'sleep 600',
    cpu_cores: 1,
    gpu_count: 0,
    gpu_memory: 0,
    start_time: '2026-11-27T08:00:01+00:00',
    end_time: null,
    execution_time: 60,
    agent_id: 'box-1',
    sub_agent_id: 'box-1-sub-7',
    log_file: null,
    exit_code: null,
    status_reason: null,
    gpu_ids: [],
    log_size: 0,
    agent_unreachable_since: null,
    dependents: [],
    env: {},
    work_dir: null,
    time_limit_s: 0,
    notify: [],
    retry_of: null,
    retried_as: null,
    progress: null,
    ...overrides,
  }
}

describe('TaskTable: agent unreachable', () => {
  const mountTable = async (tasks: Task[]) => {
    const wrapper = mount(TaskTable, { props: { tasks, loading: false }, global: { plugins: [i18n] } })
    await flushPromises()
    return wrapper
  }

  it('marks a running task whose agent the server cannot hear', async () => {
    const wrapper = await mountTable([task({ agent_unreachable_since: '2026-11-27T08:05:00+00:00' })])
    expect(wrapper.find('[data-testid="task-unreachable-7"]').exists()).toBe(true)
  })

  it('shows nothing while the agent is heard', async () => {
    const wrapper = await mountTable([task()])
    expect(wrapper.find('[data-testid="task-unreachable-7"]').exists()).toBe(false)
  })
})
