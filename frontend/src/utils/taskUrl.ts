import { TASK_STATUSES, type TaskStatus } from '@/api'
import { DEFAULT_PAGE_SIZE, emptyFilters, type TaskFilters } from '@/store/tasks'

/** What the tasks page shows, as it lives in the URL: `/tasks?status=failed,canceled&name=x&page=2&size=50`. */
export interface TaskListState {
  filters: TaskFilters
  page: number
  pageSize: number
}

export const PAGE_SIZES = [10, 20, 50, 100, 200]

type QueryValue = string | null | (string | null)[] | undefined

function first(value: QueryValue): string {
  const one = Array.isArray(value) ? value[0] : value
  return typeof one === 'string' ? one : ''
}

function positiveInt(value: QueryValue): number | null {
  const text = first(value)
  return /^\d+$/.test(text) && Number(text) > 0 ? Number(text) : null
}

/** Reads the list state from a route query; unknown statuses, bad numbers and odd sizes are ignored. */
export function stateFromQuery(query: Record<string, QueryValue>): TaskListState {
  const raw = Array.isArray(query.status) ? query.status.join(',') : first(query.status)
  const statuses = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s, i, all): s is TaskStatus => TASK_STATUSES.includes(s as TaskStatus) && all.indexOf(s) === i)
  const size = positiveInt(query.size)
  return {
    filters: { ...emptyFilters(), statuses, name: first(query.name), templateType: first(query.template), script: first(query.script) },
    page: positiveInt(query.page) ?? 1,
    pageSize: size != null && PAGE_SIZES.includes(size) ? size : DEFAULT_PAGE_SIZE,
  }
}

/** The query for a list state: only what differs from the defaults, so a plain list is a plain `/tasks`. */
export function queryFromState(state: TaskListState): Record<string, string> {
  const query: Record<string, string> = {}
  const { filters } = state
  if (filters.statuses.length) query.status = filters.statuses.join(',')
  if (filters.name) query.name = filters.name
  if (filters.templateType) query.template = filters.templateType
  if (filters.script) query.script = filters.script
  if (state.page > 1) query.page = String(state.page)
  if (state.pageSize !== DEFAULT_PAGE_SIZE) query.size = String(state.pageSize)
  return query
}

export function sameQuery(a: Record<string, QueryValue>, b: Record<string, QueryValue>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((k) => first(a[k]) !== '' || first(b[k]) !== ''))
  return [...keys].every((k) => first(a[k]) === first(b[k]))
}

/** The task id in `/tasks/65`, else null. */
export function taskIdFromParam(param: QueryValue): number | null {
  return positiveInt(param)
}
