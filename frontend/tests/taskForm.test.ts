import { describe, expect, it } from 'vitest'
import type { Task } from '@/api'
import {
  emptyTaskForm,
  findMissingDependencies,
  isRetryable,
  parseDependencyIds,
  parseNotifyUrls,
  retryOverrides,
  taskToForm,
  changedFields,
  recheckErrors,
  validateTaskForm,
  type TaskForm,
} from '@/utils/taskForm'

function form(overrides: Partial<TaskForm> = {}): TaskForm {
  return { ...emptyTaskForm(), name: 'train', templateType: 'sft', script: 'echo hi', ...overrides }
}

describe('parseDependencyIds', () => {
  it('splits on commas (also the Chinese comma) and spaces, dropping duplicates', () => {
    expect(parseDependencyIds(' 3, 5，7 3 ')).toEqual({ ids: [3, 5, 7], invalid: [] })
  })

  it('reports tokens that are not positive whole numbers', () => {
    expect(parseDependencyIds('4, x, -1, 2.5, 0')).toEqual({ ids: [4], invalid: ['x', '-1', '2.5', '0'] })
  })

  it('treats an empty field as no dependencies', () => {
    expect(parseDependencyIds('  ')).toEqual({ ids: [], invalid: [] })
  })
})

describe('validateTaskForm', () => {
  it('builds the payload with defaults and a typed GiB size converted to MiB', () => {
    const { errors, payload } = validateTaskForm(form({ name: '  train  ', gpuMemory: '24 GiB', dependsOn: '1,2' }))
    expect(errors).toEqual({})
    expect(payload).toEqual({
      name: 'train',
      template_type: 'sft',
      script_content: 'echo hi',
      priority: 3,
      cpu_cores: 1,
      gpu_count: 0,
      gpu_memory: 24 * 1024,
      depends_on: [1, 2],
      env: {},
      work_dir: null,
      time_limit_s: 0,
      notify: [],
    })
  })

  it('sends env, work dir, time limit and notify URLs', () => {
    const { payload } = validateTaskForm(form({
      env: [{ key: 'LR', value: '3e-4' }],
      workDir: ' /data/run ',
      timeLimit: '2h30m',
      notify: 'https://hooks.example/x\n\n  feishu://token  \n',
    }))
    expect(payload).toMatchObject({
      env: { LR: '3e-4' },
      work_dir: '/data/run',
      time_limit_s: 9000,
      notify: ['https://hooks.example/x', 'feishu://token'],
    })
  })

  it('refuses a bad env name, time limit or notify URL with a message for each', () => {
    const { errors, payload } = validateTaskForm(form({
      env: [{ key: 'CUDA_VISIBLE_DEVICES', value: '0' }],
      timeLimit: 'two hours',
      notify: 'example.com/hook',
    }))
    expect(payload).toBeNull()
    expect(errors.env).toEqual({ key: 'taskForm.errors.envKeyReserved', params: { name: 'CUDA_VISIBLE_DEVICES' } })
    expect(errors.timeLimit?.key).toBe('taskForm.errors.timeLimitInvalid')
    expect(errors.notify).toEqual({ key: 'taskForm.errors.notifyInvalid', params: { urls: 'example.com/hook' } })
    expect(validateTaskForm(form({ timeLimit: '4000d' })).errors.timeLimit?.key).toBe('taskForm.errors.timeLimitTooLong')
  })

  it('rejects a blank name, template and script', () => {
    const { errors, payload } = validateTaskForm(form({ name: '  ', templateType: '', script: '\n' }))
    expect(payload).toBeNull()
    expect(errors.name?.key).toBe('taskForm.errors.nameRequired')
    expect(errors.templateType?.key).toBe('taskForm.errors.templateRequired')
    expect(errors.script?.key).toBe('taskForm.errors.scriptRequired')
  })

  it('rejects resources that are not whole numbers of 0 or more', () => {
    const { errors } = validateTaskForm(form({ cpuCores: -1, gpuCount: 1.5 }))
    expect(errors.cpuCores?.key).toBe('taskForm.errors.notWholeNumber')
    expect(errors.gpuCount?.key).toBe('taskForm.errors.notWholeNumber')
    expect(validateTaskForm(form({ cpuCores: null })).errors.cpuCores).toBeDefined()
    expect(validateTaskForm(form({ cpuCores: 0, gpuCount: 0 })).payload).not.toBeNull()
  })

  it('rejects a priority outside 1–5 and a name over 200 characters', () => {
    expect(validateTaskForm(form({ priority: 6 })).errors.priority).toBeDefined()
    expect(validateTaskForm(form({ name: 'x'.repeat(201) })).errors.name?.key).toBe('taskForm.errors.nameTooLong')
  })

  it('names the dependency tokens that are not ids', () => {
    const { errors } = validateTaskForm(form({ dependsOn: '1, abc' }))
    expect(errors.dependsOn).toEqual({ key: 'taskForm.errors.dependencyInvalid', params: { ids: 'abc' } })
  })
})

describe('findMissingDependencies', () => {
  it('returns the ids that do not exist, in order', async () => {
    const existing = new Set([1, 3])
    const missing = await findMissingDependencies([4, 1, 2, 3], async (id) => existing.has(id))
    expect(missing).toEqual([4, 2])
  })
})

describe('parseNotifyUrls', () => {
  it('takes one URL per line', () => {
    expect(parseNotifyUrls(' https://a.example/h \nmailto://me:pw@example.com\nnot a url')).toEqual({
      urls: ['https://a.example/h', 'mailto://me:pw@example.com'],
      invalid: ['not a url'],
    })
  })
})

function task(overrides: Partial<Task> = {}): Task {
  return {
    id: 7, name: 'train', template_type: 'sft', priority: 2, depends_on: [3], status: 'failed',
    created_time: '2026-11-27T08:00:00+00:00', script_content: 'python train.py', cpu_cores: 4, gpu_count: 1,
    gpu_memory: 24 * 1024, start_time: null, end_time: null, execution_time: null, agent_id: null, sub_agent_id: null,
    log_file: null, exit_code: 1, status_reason: 'exit code 1', gpu_ids: [], log_size: 0, agent_unreachable_since: null,
    dependents: [8], env: { LR: '3e-4' }, work_dir: '/data', time_limit_s: 5400, notify: ['https://h.example/'],
    retry_of: null, retried_as: null, progress: null,
    ...overrides,
  }
}

describe('taskToForm', () => {
  it('fills the form with a task, so that sending it unchanged gives the same fields', () => {
    const filled = taskToForm(task())
    expect(filled).toMatchObject({ name: 'train', gpuMemory: 24 * 1024, dependsOn: '3', timeLimit: '1h30m', workDir: '/data' })
    expect(validateTaskForm(filled).payload).toMatchObject({
      env: { LR: '3e-4' }, work_dir: '/data', time_limit_s: 5400, notify: ['https://h.example/'], depends_on: [3],
    })
  })
})

describe('retryOverrides', () => {
  it('sends only what the person changed, never the dependencies', () => {
    const old = task({ gpu_memory: 81559 }) // kept to the MiB: not a change
    const filled = { ...taskToForm(old), script: 'python train.py --fixed', cpuCores: 8, dependsOn: '' }
    const { payload } = validateTaskForm(filled)
    expect(retryOverrides(payload!, old)).toEqual({ script_content: 'python train.py --fixed', cpu_cores: 8 })
    expect(retryOverrides(validateTaskForm({ ...taskToForm(old), dependsOn: '' }).payload!, old)).toEqual({})
  })
})

describe('isRetryable', () => {
  it('is true for a failed or canceled task not retried yet', () => {
    expect(isRetryable(task())).toBe(true)
    expect(isRetryable(task({ status: 'canceled' }))).toBe(true)
    expect(isRetryable(task({ retried_as: 9 }))).toBe(false)
    expect(isRetryable(task({ status: 'completed' }))).toBe(false)
  })
})

describe('form validation rules', () => {
  it('refuses -1 and 2.5 cores with a message naming the value, never changing it', () => {
    const { errors, payload } = validateTaskForm(form({ cpuCores: -1, gpuCount: 2.5 }))
    expect(payload).toBeNull()
    expect(errors.cpuCores).toEqual({ key: 'taskForm.errors.notWholeNumber', params: { value: '-1' } })
    expect(errors.gpuCount).toEqual({ key: 'taskForm.errors.notWholeNumber', params: { value: '2.5' } })
    expect(validateTaskForm(form({ cpuCores: null })).errors.cpuCores).toEqual({ key: 'taskForm.errors.wholeNumber' })
  })

  it('clears an error once its field is fixed, and only the fields edited', () => {
    const bad = form({ name: '', cpuCores: -1 })
    const errors = validateTaskForm(bad).errors
    expect(Object.keys(errors).sort()).toEqual(['cpuCores', 'name'])
    const fixed = { ...bad, cpuCores: 2 }
    const after = recheckErrors(errors, fixed, changedFields(fixed, bad))
    expect(Object.keys(after)).toEqual(['name'])
    const missing = { dependsOn: { key: 'taskForm.errors.dependencyMissing', params: { ids: '99' } } }
    expect(recheckErrors(missing, fixed, ['name'])).toBe(missing) // a server finding stays until its field is edited
    expect(recheckErrors(missing, { ...fixed, dependsOn: '3' }, ['dependsOn'])).toEqual({})
  })

  it('refuses a GPU size it cannot read', () => {
    expect(validateTaskForm(form({ gpuMemory: 'lots' })).errors.gpuMemory)
      .toEqual({ key: 'taskForm.errors.gpuMemoryInvalid', params: { value: 'lots' } })
    expect(validateTaskForm(form({ gpuMemory: 143771 })).payload?.gpu_memory).toBe(143771)
  })
})
