/** The new-task form: its shape, defaults and validation, kept free of Vue so it is easy to test. */
import type { TaskCreatePayload } from '@/api'

export const GPU_MEMORY_OPTIONS_GB = [0, 8, 16, 24, 40, 48, 80] as const
export const MAX_NAME_LENGTH = 200
export const MIB_PER_GB = 1024

export interface TaskForm {
  name: string
  templateType: string
  priority: number
  cpuCores: number | null | undefined
  gpuCount: number | null | undefined
  gpuMemoryGb: number
  script: string
  dependsOn: string
}

/** An i18n key plus its parameters, so the component decides the language. */
export interface FieldError {
  key: string
  params?: Record<string, string | number>
}

export type FieldErrors = Partial<Record<keyof TaskForm, FieldError>>

export function emptyTaskForm(): TaskForm {
  return { name: '', templateType: '', priority: 3, cpuCores: 1, gpuCount: 0, gpuMemoryGb: 0, script: '', dependsOn: '' }
}

/** Splits "3, 5，7" into ids; anything that is not a positive whole number is reported as invalid. */
export function parseDependencyIds(text: string): { ids: number[]; invalid: string[] } {
  const ids: number[] = []
  const invalid: string[] = []
  for (const raw of text.split(/[,，\s]+/)) {
    const token = raw.trim()
    if (!token) continue
    if (/^\d+$/.test(token) && Number(token) > 0) {
      const id = Number(token)
      if (!ids.includes(id)) ids.push(id)
    } else {
      invalid.push(token)
    }
  }
  return { ids, invalid }
}

function isWholeNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0
}

/** Checks everything that needs no server; returns the payload only when there are no errors. */
export function validateTaskForm(form: TaskForm): { errors: FieldErrors; payload: TaskCreatePayload | null } {
  const errors: FieldErrors = {}
  const name = form.name.trim()
  if (!name) errors.name = { key: 'taskForm.errors.nameRequired' }
  else if (name.length > MAX_NAME_LENGTH) errors.name = { key: 'taskForm.errors.nameTooLong', params: { max: MAX_NAME_LENGTH } }
  if (!form.templateType.trim()) errors.templateType = { key: 'taskForm.errors.templateRequired' }
  if (!form.script.trim()) errors.script = { key: 'taskForm.errors.scriptRequired' }
  if (!Number.isInteger(form.priority) || form.priority < 1 || form.priority > 5) {
    errors.priority = { key: 'taskForm.errors.priorityRange' }
  }
  if (!isWholeNumber(form.cpuCores)) errors.cpuCores = { key: 'taskForm.errors.wholeNumber' }
  if (!isWholeNumber(form.gpuCount)) errors.gpuCount = { key: 'taskForm.errors.wholeNumber' }
  if (!isWholeNumber(form.gpuMemoryGb)) errors.gpuMemoryGb = { key: 'taskForm.errors.wholeNumber' }
  const deps = parseDependencyIds(form.dependsOn)
  if (deps.invalid.length) {
    errors.dependsOn = { key: 'taskForm.errors.dependencyInvalid', params: { ids: deps.invalid.join(', ') } }
  }
  if (Object.keys(errors).length) return { errors, payload: null }
  return {
    errors,
    payload: {
      name,
      template_type: form.templateType.trim(),
      script_content: form.script,
      priority: form.priority,
      cpu_cores: form.cpuCores as number,
      gpu_count: form.gpuCount as number,
      gpu_memory: form.gpuMemoryGb * MIB_PER_GB,
      depends_on: deps.ids,
    },
  }
}

/** Asks `exists` about every id (in parallel) and returns those that do not exist, in input order. */
export async function findMissingDependencies(
  ids: number[],
  exists: (id: number) => Promise<boolean>,
): Promise<number[]> {
  const found = await Promise.all(ids.map((id) => exists(id)))
  return ids.filter((_, i) => !found[i])
}
