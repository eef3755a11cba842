import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import * as api from '@/api'
import { buildTaskQuery, emptyFilters, useTasksStore } from '@/store/tasks'

describe('buildTaskQuery', () => {
  it('leaves out blank filters and keeps paging', () => {
    expect(buildTaskQuery(emptyFilters(), 1, 20)).toEqual({ page: 1, page_size: 20 })
  })

  it('trims names and template types, keeps the script substring as typed', () => {
    const query = buildTaskQuery(
      { statuses: ['waiting', 'running'], name: '  train ', templateType: ' sft ', script: ' torchrun' },
      3,
      50,
    )
    expect(query).toEqual({
      status: ['waiting', 'running'],
      name: 'train',
      template_type: 'sft',
      script: ' torchrun',
      page: 3,
      page_size: 50,
    })
  })
})

describe('tasks store', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    vi.restoreAllMocks()
  })

  it('goes back to page 1 when the filters change and sends them to the server', async () => {
    const listTasks = vi.spyOn(api, 'listTasks').mockResolvedValue({ items: [], total: 0, page: 1, page_size: 20 })
    const store = useTasksStore()
    store.setPage(4)
    store.setFilters({ statuses: ['failed'], name: 'eval', templateType: '', script: '' })
    expect(store.page).toBe(1)
    await store.fetchList()
    expect(listTasks).toHaveBeenCalledWith({ status: ['failed'], name: 'eval', page: 1, page_size: 20 })
  })

  it('reports a 404 as a missing task and passes other errors on', async () => {
    const getTask = vi.spyOn(api, 'getTask')
    const store = useTasksStore()
    getTask.mockRejectedValueOnce(new api.ApiError(404, 'task_not_found', 'No task 9.'))
    await expect(store.taskExists(9)).resolves.toBe(false)
    getTask.mockRejectedValueOnce(new api.ApiError(0, 'network_error', 'down'))
    await expect(store.taskExists(9)).rejects.toMatchObject({ code: 'network_error' })
  })
})
