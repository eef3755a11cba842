import { describe, expect, it } from 'vitest'
import { emptyFilters } from '@/store/tasks'
import { queryFromState, sameQuery, stateFromQuery, taskIdFromParam } from '@/utils/taskUrl'
import { isTypingTarget, shortcutFor } from '@/utils/shortcuts'
import { parseThemeMode, resolveTheme, XTERM_THEMES } from '@/composables/useTheme'
import { backoffDelay, moduleUrlFromError, retryingImport, withRetryQuery } from '@/utils/retryImport'
import { offlineSince } from '@/utils/offline'
import { gpuSummary } from '@/utils/overview'

describe('task list state <-> URL', () => {
  it('a plain list is a plain /tasks', () => {
    expect(queryFromState({ filters: emptyFilters(), page: 1, pageSize: 20 })).toEqual({})
    expect(stateFromQuery({})).toEqual({ filters: emptyFilters(), page: 1, pageSize: 20 })
  })

  it('round-trips filters, page and size', () => {
    const state = {
      filters: { statuses: ['failed', 'canceled'] as ('failed' | 'canceled')[], name: 'train x', templateType: 'custom', script: 'lr=3e-4' },
      page: 3,
      pageSize: 50,
    }
    const query = queryFromState(state)
    expect(query).toEqual({ status: 'failed,canceled', name: 'train x', template: 'custom', script: 'lr=3e-4', page: '3', size: '50' })
    expect(stateFromQuery(query)).toEqual(state)
  })

  it('ignores unknown statuses, duplicates, bad pages and odd sizes', () => {
    const state = stateFromQuery({ status: 'failed,bogus,failed', page: '-2', size: '37' })
    expect(state.filters.statuses).toEqual(['failed'])
    expect(state.page).toBe(1)
    expect(state.pageSize).toBe(20)
    expect(stateFromQuery({ status: ['running', 'waiting'], page: ['2'] }).filters.statuses).toEqual(['running', 'waiting'])
    expect(stateFromQuery({ page: 'abc' }).page).toBe(1)
  })

  it('compares queries by value, blanks equal to missing', () => {
    expect(sameQuery({ status: 'failed', name: '' }, { status: 'failed' })).toBe(true)
    expect(sameQuery({ page: '2' }, { page: ['2'] })).toBe(true)
    expect(sameQuery({ page: '2' }, {})).toBe(false)
  })

  it('reads the task id of /tasks/65', () => {
    expect(taskIdFromParam('65')).toBe(65)
    expect(taskIdFromParam('')).toBeNull()
    expect(taskIdFromParam(undefined)).toBeNull()
    expect(taskIdFromParam('6x')).toBeNull()
  })
})

describe('shortcuts', () => {
  it('maps n and / outside text fields', () => {
    const div = document.createElement('div')
    expect(shortcutFor({ key: 'n', target: div })).toBe('new-task')
    expect(shortcutFor({ key: '/', target: document.body })).toBe('focus-filter')
    expect(shortcutFor({ key: 'x', target: div })).toBeNull()
  })

  it('ignores keys with modifiers or while composing', () => {
    expect(shortcutFor({ key: 'n', ctrlKey: true, target: document.body })).toBeNull()
    expect(shortcutFor({ key: 'n', metaKey: true, target: document.body })).toBeNull()
    expect(shortcutFor({ key: 'n', altKey: true, target: document.body })).toBeNull()
    expect(shortcutFor({ key: 'n', isComposing: true, target: document.body })).toBeNull()
  })

  it('ignores keys typed into inputs, textareas, selects and editors', () => {
    const editor = document.createElement('div')
    editor.className = 'cm-editor'
    const line = document.createElement('span')
    editor.appendChild(line)
    const editable = document.createElement('div')
    editable.setAttribute('contenteditable', 'true')
    for (const target of [document.createElement('input'), document.createElement('textarea'), document.createElement('select'), line, editable]) {
      expect(isTypingTarget(target)).toBe(true)
      expect(shortcutFor({ key: 'n', target })).toBeNull()
    }
    expect(isTypingTarget(null)).toBe(false)
    expect(isTypingTarget(document.createElement('button'))).toBe(false)
  })
})

describe('theme', () => {
  it('follows the system unless a theme was picked', () => {
    expect(resolveTheme('auto', true)).toBe('dark')
    expect(resolveTheme('auto', false)).toBe('light')
    expect(resolveTheme('light', true)).toBe('light')
    expect(resolveTheme('dark', false)).toBe('dark')
  })

  it('reads the saved choice, anything else is auto', () => {
    expect(parseThemeMode('dark')).toBe('dark')
    expect(parseThemeMode('light')).toBe('light')
    expect(parseThemeMode(null)).toBe('auto')
    expect(parseThemeMode('purple')).toBe('auto')
  })

  it('gives xterm a light and a dark palette', () => {
    expect(XTERM_THEMES.dark.background).not.toBe(XTERM_THEMES.light.background)
  })
})

describe('retrying a lazily loaded chunk', () => {
  it('backs off, then waits 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 20].map(backoffDelay)).toEqual([1000, 2000, 4000, 8000, 15000, 30000, 30000])
  })

  it('finds the failed URL in the browser message', () => {
    const url = 'http://127.0.0.1:5000/assets/codemirrorSetup-AbC_1.js'
    expect(moduleUrlFromError(new TypeError(`Failed to fetch dynamically imported module: ${url}`))).toBe(url)
    expect(moduleUrlFromError(new TypeError(`error loading dynamically imported module: ${url}?retry=2`))).toBe(url)
    expect(moduleUrlFromError(new TypeError('Importing a module script failed.'))).toBeNull()
    expect(withRetryQuery(url, 3)).toBe(`${url}?retry=3`)
  })

  it('retries by URL with a new query each time, then keeps the module', async () => {
    const url = 'http://h/assets/x-1.js'
    let firstCalls = 0
    const urls: string[] = []
    const loader = retryingImport(
      () => {
        firstCalls += 1
        return Promise.reject(new TypeError(`Failed to fetch dynamically imported module: ${url}`))
      },
      (u) => {
        urls.push(u)
        return urls.length < 2 ? Promise.reject(new TypeError(`Failed to fetch dynamically imported module: ${u}`)) : Promise.resolve({ ok: 1 })
      },
    )
    await expect(loader.load()).rejects.toThrow()
    await expect(loader.load()).rejects.toThrow()
    expect(loader.failures()).toBe(2)
    await expect(loader.load()).resolves.toEqual({ ok: 1 })
    await expect(loader.load()).resolves.toEqual({ ok: 1 })
    expect(firstCalls).toBe(1)
    expect(urls).toEqual([`${url}?retry=1`, `${url}?retry=2`])
  })

  it('shares one attempt between callers', async () => {
    let calls = 0
    const loader = retryingImport(() => {
      calls += 1
      return Promise.resolve('m')
    }, () => Promise.reject(new Error('unused')))
    await Promise.all([loader.load(), loader.load()])
    expect(calls).toBe(1)
  })
})

describe('offline since', () => {
  it('says the clock time and how long ago', () => {
    const now = new Date(2026, 0, 5, 16, 16, 30)
    expect(offlineSince(new Date(2026, 0, 5, 16, 11, 0).toISOString(), now)).toEqual({ time: '16:11', ago: { unit: 'min', n: 5 } })
    expect(offlineSince(new Date(2026, 0, 5, 16, 16, 0).toISOString(), now)?.ago).toEqual({ unit: 'now', n: 0 })
    expect(offlineSince(new Date(2026, 0, 5, 13, 0, 0).toISOString(), now)?.ago).toEqual({ unit: 'h', n: 3 })
    expect(offlineSince(new Date(2026, 0, 1, 9, 5, 0).toISOString(), now)).toEqual({ time: '2026-01-01 09:05', ago: { unit: 'd', n: 4 } })
    expect(offlineSince(null, now)).toBeNull()
  })
})

describe('overview GPUs', () => {
  it('counts the GPUs of online main agents and those holding a task', () => {
    const gpu = (index: number) => ({ index }) as never
    const mains = [
      { status: 'online', gpu_info: [gpu(0), gpu(1)], gpu_reservations: [{ index: 1, task_ids: [4], reserved_mib: 0, whole: true }] },
      { status: 'online', gpu_info: [gpu(0)], gpu_reservations: [{ index: 0, task_ids: [], reserved_mib: 0, whole: false }] },
      { status: 'offline', gpu_info: [gpu(0)], gpu_reservations: [{ index: 0, task_ids: [9], reserved_mib: 0, whole: true }] },
    ] as Parameters<typeof gpuSummary>[0]
    expect(gpuSummary(mains)).toEqual({ busy: 1, total: 3 })
  })
})
