import { describe, expect, it } from 'vitest'
import { envKeyError, envRows, validateEnv } from '@/utils/envVars'

describe('envKeyError', () => {
  it('accepts shell variable names', () => {
    for (const key of ['LR', 'lr', '_X', 'BATCH_SIZE2', 'CUDA_HOME', 'MY_TASK_ID']) expect(envKeyError(key)).toBeNull()
  })

  it('refuses names a shell cannot export', () => {
    for (const key of ['1X', 'A-B', 'A B', 'é', '']) {
      expect(envKeyError(key)).toEqual({ key: 'taskForm.errors.envKeyInvalid', params: { name: key } })
    }
  })

  it("refuses the system's own variables", () => {
    for (const key of ['TASK_ID', 'TASK_ANYTHING', 'CUDA_VISIBLE_DEVICES', 'CUDA_DEVICE_ORDER']) {
      expect(envKeyError(key)).toEqual({ key: 'taskForm.errors.envKeyReserved', params: { name: key } })
    }
  })
})

describe('validateEnv', () => {
  it('turns rows into an object, trimming names and skipping blank rows', () => {
    const rows = [{ key: ' LR ', value: '3e-4' }, { key: '', value: '' }, { key: 'EMPTY', value: '' }]
    expect(validateEnv(rows)).toEqual({ env: { LR: '3e-4', EMPTY: '' }, error: null })
  })

  it('names the first bad, missing or repeated name', () => {
    expect(validateEnv([{ key: 'OK', value: '1' }, { key: 'TASK_NAME', value: 'x' }]).error?.key).toBe(
      'taskForm.errors.envKeyReserved',
    )
    expect(validateEnv([{ key: '', value: 'orphan' }]).error).toEqual({
      key: 'taskForm.errors.envKeyMissing',
      params: { value: 'orphan' },
    })
    expect(validateEnv([{ key: 'A', value: '1' }, { key: 'A', value: '2' }]).error).toEqual({
      key: 'taskForm.errors.envKeyRepeated',
      params: { name: 'A' },
    })
  })

  it('round-trips through envRows', () => {
    const env = { A: '1', B: 'two words' }
    expect(validateEnv(envRows(env)).env).toEqual(env)
    expect(envRows(null)).toEqual([])
  })
})
