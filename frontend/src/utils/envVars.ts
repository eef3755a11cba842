/** The task's environment variables as editable rows, checked as the server checks them. */
import type { FieldError } from '@/utils/taskForm'

export interface EnvRow {
  key: string
  value: string
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/
/** Set by the agent for every task (besides every TASK_* name), so a task may not override them. */
export const RESERVED_ENV_KEYS = ['CUDA_VISIBLE_DEVICES', 'CUDA_DEVICE_ORDER']

/** Why `key` cannot be a variable name of a task, or null when it can. */
export function envKeyError(key: string): FieldError | null {
  if (!ENV_KEY.test(key)) return { key: 'taskForm.errors.envKeyInvalid', params: { name: key } }
  if (key.startsWith('TASK_') || RESERVED_ENV_KEYS.includes(key)) {
    return { key: 'taskForm.errors.envKeyReserved', params: { name: key } }
  }
  return null
}

/** Rows → the `env` object; blank rows are skipped, the first bad or repeated name is the error. */
export function validateEnv(rows: EnvRow[]): { env: Record<string, string>; error: FieldError | null } {
  const env: Record<string, string> = {}
  for (const row of rows) {
    const key = row.key.trim()
    if (!key && !row.value) continue
    const error = key ? envKeyError(key) : { key: 'taskForm.errors.envKeyMissing', params: { value: row.value } }
    if (error) return { env: {}, error }
    if (key in env) return { env: {}, error: { key: 'taskForm.errors.envKeyRepeated', params: { name: key } } }
    env[key] = row.value
  }
  return { env, error: null }
}

export function envRows(env: Record<string, string> | null | undefined): EnvRow[] {
  return Object.entries(env ?? {}).map(([key, value]) => ({ key, value }))
}
