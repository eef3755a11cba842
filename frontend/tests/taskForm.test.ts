import { describe, expect, it } from 'vitest'
import { emptyTaskForm, findMissingDependencies, parseDependencyIds, validateTaskForm, type TaskForm } from '@/utils/taskForm'

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
  it('builds the payload with defaults and GB converted to MiB', () => {
    const { errors, payload } = validateTaskForm(form({ name: '  train  ', gpuMemoryGb: 24, dependsOn: '1,2' }))
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
    })
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
    expect(errors.cpuCores?.key).toBe('taskForm.errors.wholeNumber')
    expect(errors.gpuCount?.key).toBe('taskForm.errors.wholeNumber')
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
