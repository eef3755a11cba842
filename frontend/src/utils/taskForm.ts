/** The new-task form: its shape, defaults and validation, kept free of Vue so it is easy to test. */
import type { Task, TaskCreatePayload, TaskRetryPayload, TaskSweepPayload } from '@/api'
import { MAX_TIME_LIMIT_S, formatLimit, parseDuration } from '@/utils/duration'
import { envRows, validateEnv, type EnvRow } from '@/utils/envVars'
import { gpuMemoryMib } from '@/utils/gpuMemory'

export const MAX_NAME_LENGTH = 200

export interface TaskForm {
  name: string
  templateType: string
  priority: number
  cpuCores: number | null | undefined
  gpuCount: number | null | undefined
  /** MiB per GPU (0: whole GPUs), or the text of a custom size (`40 GiB`, `20000 MiB`). */
  gpuMemory: number | string
  script: string
  dependsOn: string
  env: EnvRow[]
  workDir: string
  /** A duration (`2h30m`); blank: no limit. */
  timeLimit: string
  /** URLs, one per line. */
  notify: string
}

/** An i18n key plus its parameters, so the component decides the language. */
export interface FieldError {
  key: string
  params?: Record<string, string | number>
}

export type FieldErrors = Partial<Record<keyof TaskForm, FieldError>>

/** What the new-task form sends: one task, or a sweep when the script has `{{name}}` placeholders. */
export type TaskSubmission = { kind: 'task'; payload: TaskCreatePayload } | { kind: 'sweep'; payload: TaskSweepPayload }

export function emptyTaskForm(): TaskForm {
  return {
    name: '', templateType: '', priority: 3, cpuCores: 1, gpuCount: 0, gpuMemory: 0, script: '', dependsOn: '',
    env: [], workDir: '', timeLimit: '', notify: '',
  }
}

/** The form filled in with a task's fields (to clone or retry it), GPU memory to the MiB. */
export function taskToForm(task: Task): TaskForm {
  return {
    name: task.name,
    templateType: task.template_type,
    priority: task.priority,
    cpuCores: task.cpu_cores,
    gpuCount: task.gpu_count,
    gpuMemory: task.gpu_memory,
    script: task.script_content,
    dependsOn: task.depends_on.join(', '),
    env: envRows(task.env),
    workDir: task.work_dir ?? '',
    timeLimit: formatLimit(task.time_limit_s),
    notify: task.notify.join('\n'),
  }
}

const URL_LIKE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/\S+$/

/** "one URL per line" → the URLs; lines that are not `scheme://...` are reported. */
export function parseNotifyUrls(text: string): { urls: string[]; invalid: string[] } {
  const lines = text.split(/\s*\n\s*/).map((line) => line.trim()).filter(Boolean)
  return { urls: lines.filter((l) => URL_LIKE.test(l)), invalid: lines.filter((l) => !URL_LIKE.test(l)) }
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

/** "-1 is not allowed: …" (the value is named, never silently changed). */
function wholeNumberError(value: unknown): FieldError {
  return value === null || value === undefined || value === ''
    ? { key: 'taskForm.errors.wholeNumber' }
    : { key: 'taskForm.errors.notWholeNumber', params: { value: String(value) } }
}

/**
 * The errors after the fields in `changed` were edited: each of those is checked again (and cleared once
 * fixed); the others, and errors only the server can find (a missing dependency), stay until edited.
 */
export function recheckErrors(errors: FieldErrors, form: TaskForm, changed: (keyof TaskForm)[]): FieldErrors {
  const touched = changed.filter((field) => errors[field])
  if (!touched.length) return errors
  const now = validateTaskForm(form).errors
  const next: FieldErrors = { ...errors }
  for (const field of touched) {
    if (now[field]) next[field] = now[field]
    else delete next[field]
  }
  return next
}

/** Which fields differ between two snapshots of the form. */
export function changedFields(now: TaskForm, before: TaskForm): (keyof TaskForm)[] {
  return (Object.keys(now) as (keyof TaskForm)[]).filter((key) => JSON.stringify(now[key]) !== JSON.stringify(before[key]))
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
  if (!isWholeNumber(form.cpuCores)) errors.cpuCores = wholeNumberError(form.cpuCores)
  if (!isWholeNumber(form.gpuCount)) errors.gpuCount = wholeNumberError(form.gpuCount)
  const gpuMemory = gpuMemoryMib(form.gpuMemory)
  if (gpuMemory === null) errors.gpuMemory = { key: 'taskForm.errors.gpuMemoryInvalid', params: { value: String(form.gpuMemory) } }
  const deps = parseDependencyIds(form.dependsOn)
  if (deps.invalid.length) {
    errors.dependsOn = { key: 'taskForm.errors.dependencyInvalid', params: { ids: deps.invalid.join(', ') } }
  }
  const env = validateEnv(form.env)
  if (env.error) errors.env = env.error
  const timeLimit = parseDuration(form.timeLimit)
  if (timeLimit === null) errors.timeLimit = { key: 'taskForm.errors.timeLimitInvalid' }
  else if (timeLimit > MAX_TIME_LIMIT_S) errors.timeLimit = { key: 'taskForm.errors.timeLimitTooLong' }
  const notify = parseNotifyUrls(form.notify)
  if (notify.invalid.length) errors.notify = { key: 'taskForm.errors.notifyInvalid', params: { urls: notify.invalid.join(', ') } }
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
      gpu_memory: gpuMemory as number,
      depends_on: deps.ids,
      env: env.env,
      work_dir: form.workDir.trim() || null,
      time_limit_s: timeLimit ?? 0,
      notify: notify.urls,
    },
  }
}

/** A failed or canceled task that was not retried yet may be retried (with its cascade). */
export function isRetryable(task: Task): boolean {
  return (task.status === 'failed' || task.status === 'canceled') && task.retried_as === null
}

const RETRY_FIELDS = [
  'name', 'template_type', 'script_content', 'priority', 'cpu_cores', 'gpu_count', 'gpu_memory',
  'env', 'work_dir', 'time_limit_s', 'notify',
] as const

/** The fields of `payload` that differ from `task`: a retry's overrides (its dependencies are rewired by
 * the server, so they are never sent). */
export function retryOverrides(payload: TaskCreatePayload, task: Task): TaskRetryPayload {
  const overrides: Record<string, unknown> = {}
  for (const field of RETRY_FIELDS) {
    if (JSON.stringify(payload[field]) !== JSON.stringify(task[field])) overrides[field] = payload[field]
  }
  return overrides as TaskRetryPayload
}

/** Asks `exists` about every id (in parallel) and returns those that do not exist, in input order. */
export async function findMissingDependencies(
  ids: number[],
  exists: (id: number) => Promise<boolean>,
): Promise<number[]> {
  const found = await Promise.all(ids.map((id) => exists(id)))
  return ids.filter((_, i) => !found[i])
}
