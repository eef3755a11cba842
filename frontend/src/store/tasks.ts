import { defineStore } from 'pinia'
import { computed, reactive, ref } from 'vue'
import * as api from '@/api'
import type { RetryResult, Task, TaskCreatePayload, TaskListQuery, TaskRetryPayload, TaskStatus, TaskSweepPayload } from '@/api'
import { isEnabled as notificationsOn, noticeTasks, unwatchTask, watchTasks, watchedIds } from '@/utils/desktopNotify'

export interface TaskFilters {
  statuses: TaskStatus[]
  name: string
  templateType: string
  script: string
}

export const DEFAULT_PAGE_SIZE = 20
/** Watched tasks off the current page looked up per poll (a few, in turn), for desktop notifications. */
const WATCHED_PER_POLL = 5

export function emptyFilters(): TaskFilters {
  return { statuses: [], name: '', templateType: '', script: '' }
}

/** Turns what the person typed into the list query: trimmed, blank filters left out. */
export function buildTaskQuery(filters: TaskFilters, page: number, pageSize: number): TaskListQuery {
  const query: TaskListQuery = { page, page_size: pageSize }
  if (filters.statuses?.length) query.status = [...filters.statuses]
  const name = (filters.name ?? '').trim()
  const templateType = (filters.templateType ?? '').trim()
  if (name) query.name = name
  if (templateType) query.template_type = templateType
  if (filters.script) query.script = filters.script
  return query
}

export const useTasksStore = defineStore('tasks', () => {
  const filters = reactive<TaskFilters>(emptyFilters())
  const page = ref(1)
  const pageSize = ref(DEFAULT_PAGE_SIZE)
  const items = ref<Task[]>([])
  const total = ref(0)
  const loading = ref(false)
  const detail = ref<Task | null>(null)
  /** Tasks per status (the overview), null until first read. */
  const counts = ref<Partial<Record<TaskStatus, number>> | null>(null)

  const query = computed(() => buildTaskQuery(filters, page.value, pageSize.value))
  let watchedCursor = 0

  async function fetchList(): Promise<void> {
    loading.value = true
    try {
      const result = await api.listTasks(query.value)
      items.value = result.items
      total.value = result.total
      noticeTasks(result.items)
    } finally {
      loading.value = false
    }
  }

  async function fetchStats(): Promise<void> {
    counts.value = (await api.getTaskStats()).counts
  }

  function setFilters(next: TaskFilters): void {
    Object.assign(filters, next)
    page.value = 1
  }

  function setPage(next: number): void {
    page.value = next
  }

  function setPageSize(next: number): void {
    pageSize.value = next
    page.value = 1
  }

  /** Filters, page and page size at once, as read from the URL (no reset of the page). */
  function setListState(next: { filters: TaskFilters; page: number; pageSize: number }): void {
    Object.assign(filters, next.filters)
    pageSize.value = next.pageSize
    page.value = next.page
  }

  async function create(payload: TaskCreatePayload): Promise<Task> {
    const task = await api.createTask(payload)
    watchTasks([task.id])
    await fetchList()
    return task
  }

  async function sweep(payload: TaskSweepPayload): Promise<Task[]> {
    const { items: created } = await api.sweepTasks(payload)
    watchTasks(created.map((task) => task.id))
    await fetchList()
    return created
  }

  function retryPreview(id: number): Promise<RetryResult> {
    return api.getRetryPreview(id)
  }

  async function retry(id: number, overrides: TaskRetryPayload): Promise<RetryResult> {
    const result = await api.retryTask(id, overrides)
    watchTasks([result.task.id, ...result.dependents.map((task) => task.id)])
    await fetchList()
    return result
  }

  /** Looks up a few watched tasks that the current page does not show, so their finish is noticed too. */
  async function checkWatched(): Promise<void> {
    if (!notificationsOn()) return
    const shown = new Set(items.value.map((task) => task.id))
    const others = watchedIds().filter((id) => !shown.has(id))
    if (!others.length) return
    const start = watchedCursor % others.length
    const batch = [...others, ...others].slice(start, start + Math.min(WATCHED_PER_POLL, others.length))
    watchedCursor = start + batch.length
    const found = await Promise.all(batch.map((id) => api.getTask(id).catch((err: unknown) => {
      if (err instanceof api.ApiError && err.status === 404) unwatchTask(id)
      return null
    })))
    noticeTasks(found.filter((task): task is Task => task !== null))
  }

  async function cancel(id: number): Promise<Task> {
    const task = await api.cancelTask(id)
    unwatchTask(id) // the person knows: no notification for their own cancel
    replaceInList(task)
    if (detail.value?.id === id) detail.value = task
    return task
  }

  async function openDetail(id: number): Promise<void> {
    detail.value = await api.getTask(id)
  }

  async function refreshDetail(): Promise<void> {
    if (!detail.value) return
    const task = await api.getTask(detail.value.id)
    noticeTasks([task], detail.value)
    if (detail.value?.id === task.id) detail.value = task
    replaceInList(task)
  }

  /** True when the id names a task; other errors (network, auth) are passed on. */
  async function taskExists(id: number): Promise<boolean> {
    try {
      await api.getTask(id)
      return true
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 404) return false
      throw err
    }
  }

  function replaceInList(task: Task): void {
    const index = items.value.findIndex((t) => t.id === task.id)
    if (index >= 0) items.value[index] = task
  }

  return {
    filters, page, pageSize, items, total, loading, detail, query, counts,
    fetchList, fetchStats, setFilters, setPage, setPageSize, setListState, create, sweep, retryPreview, retry, checkWatched, cancel, openDetail,
    refreshDetail, taskExists,
  }
})
