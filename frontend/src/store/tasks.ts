import { defineStore } from 'pinia'
import { computed, reactive, ref } from 'vue'
import * as api from '@/api'
import type { Task, TaskCreatePayload, TaskListQuery, TaskStatus } from '@/api'

export interface TaskFilters {
  statuses: TaskStatus[]
  name: string
  templateType: string
  script: string
}

export const DEFAULT_PAGE_SIZE = 20

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

  const query = computed(() => buildTaskQuery(filters, page.value, pageSize.value))

  async function fetchList(): Promise<void> {
    loading.value = true
    try {
      const result = await api.listTasks(query.value)
      items.value = result.items
      total.value = result.total
    } finally {
      loading.value = false
    }
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

  async function create(payload: TaskCreatePayload): Promise<Task> {
    const task = await api.createTask(payload)
    await fetchList()
    return task
  }

  async function cancel(id: number): Promise<Task> {
    const task = await api.cancelTask(id)
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
    filters, page, pageSize, items, total, loading, detail, query,
    fetchList, setFilters, setPage, setPageSize, create, cancel, openDetail, refreshDetail, taskExists,
  }
})
