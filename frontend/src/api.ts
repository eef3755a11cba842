/**
 * The only module that knows URLs, fetch, the WebSocket path, the access token and the error body.
 * Every function resolves to typed data or throws one ApiError.
 */

import type { components } from './api-schema'

/** The server's answers, generated from /api/openapi.json (`make api-types` writes api-schema.d.ts). */
type Schemas = components['schemas']

export type TaskStatus = Schemas['TaskStatus']

export const TASK_STATUSES: TaskStatus[] = ['blocked', 'waiting', 'running', 'completed', 'failed', 'canceled']
export const FINISHED_STATUSES: TaskStatus[] = ['completed', 'failed', 'canceled']

export type Task = Schemas['TaskOut']
export type TaskPage = Schemas['TaskPage']
export type TaskStats = Schemas['TaskStatsOut']
export type LogSlice = Schemas['LogSliceOut']
export type Template = Schemas['TemplateOut']
export type GpuInfo = Schemas['AgentGpu']
export type MainAgent = Schemas['MainAgentOut']
/** A main agent (with its `sub_agents`, GPU reservations and history) or a sub-agent (without). */
export type Agent = Schemas['AgentOut'] & Partial<Pick<MainAgent, 'sub_agents' | 'gpu_reservations' | 'gpu_history'>>
export type GpuReservation = Schemas['GpuReservationOut']
export type GpuHistory = Schemas['GpuHistoryOut']
export type TaskProgress = Schemas['ProgressOut']
export type TaskUsage = Schemas['UsageOut']
export type UsageSample = Schemas['UsageSampleOut']
export type TaskGraph = Schemas['TaskGraphOut']
export type Health = Schemas['HealthOut']

/** The create form sends every field (the server's defaults are not relied on). */
export type TaskCreatePayload = Required<Schemas['TaskCreate']>
/** A sweep: the create fields plus `params` (placeholder name → its values). */
export type TaskSweepPayload = Required<Schemas['TaskSweep']>
/** A retry's overrides: only the fields to change; the rest is copied from the old task. */
export type TaskRetryPayload = Schemas['TaskRetry']
/** A retry's answer (the new task and the copies of its cascade), and its preview (the old ones). */
export type RetryResult = Schemas['RetryOut']
export type SweepResult = Schemas['SweepOut']
export type TemplatePayload = Schemas['TemplateCreate']
export type TemplateChanges = Schemas['TemplateUpdate']

export interface TaskListQuery {
  status?: TaskStatus[]
  name?: string
  template_type?: string
  script?: string
  page: number
  page_size: number
}

export type LogFrame =
  /** `data` is decoded from the stored bytes `offset`..`end` (invalid bytes as U+FFFD): resume at `end`. */
  | { type: 'log'; offset: number; end: number; data: string }
  | { type: 'status'; status: TaskStatus; exit_code?: number | null; status_reason?: string | null }

export interface LogStreamHandlers {
  onFrame: (frame: LogFrame) => void
  onOpen?: () => void
  onClose?: () => void
}

export class ApiError extends Error {
  readonly status: number
  readonly code: string

  constructor(status: number, code: string, message: string) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

const TOKEN_KEY = 'task_system.token'
let unauthorizedHandler: (() => void) | null = null

export function getAccessToken(): string {
  return localStorage.getItem(TOKEN_KEY) ?? ''
}

export function setAccessToken(token: string): void {
  if (token) localStorage.setItem(TOKEN_KEY, token)
  else localStorage.removeItem(TOKEN_KEY)
}

/** Registers who asks the person for a token when the server answers 401. */
export function onUnauthorized(handler: (() => void) | null): void {
  unauthorizedHandler = handler
}

/** Turns a non-2xx response into an ApiError, reading the contract body when there is one. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let body: unknown = null
  try {
    body = await response.json()
  } catch {
    // Not JSON (a proxy error page, an empty body): fall back to the HTTP status below.
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error
  if (error && typeof error.code === 'string' && typeof error.message === 'string') {
    return new ApiError(response.status, error.code, error.message)
  }
  const text = response.statusText ? `HTTP ${response.status} ${response.statusText}` : `HTTP ${response.status}`
  return new ApiError(response.status, 'http_error', text)
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  const token = getAccessToken()
  if (token) headers.Authorization = `Bearer ${token}`
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  let response: Response
  try {
    response = await fetch(`/api${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch (err) {
    throw new ApiError(0, 'network_error', err instanceof Error ? err.message : String(err))
  }
  if (!response.ok) {
    const error = await errorFromResponse(response)
    if (response.status === 401) unauthorizedHandler?.()
    throw error
  }
  if (response.status === 204) return undefined as T
  return (await response.json()) as T
}

/** Builds the query string for GET /api/tasks, leaving out empty filters. */
export function taskListParams(query: TaskListQuery): URLSearchParams {
  const params = new URLSearchParams()
  if (query.status?.length) params.set('status', query.status.join(','))
  if (query.name) params.set('name', query.name)
  if (query.template_type) params.set('template_type', query.template_type)
  if (query.script) params.set('script', query.script)
  params.set('page', String(query.page))
  params.set('page_size', String(query.page_size))
  return params
}

export function listTasks(query: TaskListQuery): Promise<TaskPage> {
  return request('GET', `/tasks?${taskListParams(query)}`)
}

/** How many tasks are in each status (the tasks page's overview). */
export function getTaskStats(): Promise<TaskStats> {
  return request('GET', '/tasks/stats')
}

export function getTask(id: number): Promise<Task> {
  return request('GET', `/tasks/${id}`)
}

export function createTask(payload: TaskCreatePayload): Promise<Task> {
  return request('POST', '/tasks', payload)
}

/** One task per combination of `params` values (the Cartesian product). */
export function sweepTasks(payload: TaskSweepPayload): Promise<SweepResult> {
  return request('POST', '/tasks/sweep', payload)
}

/** What a retry would re-create now: the task and the tasks that failed because of it. */
export function getRetryPreview(id: number): Promise<RetryResult> {
  return request('GET', `/tasks/${id}/retry-preview`)
}

export function retryTask(id: number, overrides: TaskRetryPayload): Promise<RetryResult> {
  return request('POST', `/tasks/${id}/retry`, overrides)
}

export function cancelTask(id: number): Promise<Task> {
  return request('POST', `/tasks/${id}/cancel`)
}

/** The task's resource samples (CPU, memory, GPUs), oldest first. */
export function getTaskUsage(id: number): Promise<TaskUsage> {
  return request('GET', `/tasks/${id}/usage`)
}

/** The task's chain: its ancestors and descendants, with their statuses. */
export function getTaskGraph(id: number): Promise<TaskGraph> {
  return request('GET', `/tasks/${id}/graph`)
}

/** Reads stored output: either the last `tail` bytes, or `limit` bytes from `offset`. */
export function getTaskLog(id: number, range: { tail: number } | { offset: number; limit?: number }): Promise<LogSlice> {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(range)) {
    if (value !== undefined) params.set(key, String(value))
  }
  return request('GET', `/tasks/${id}/log?${params}`)
}

/** The stored log as bytes, for a download link (a link cannot send a header: the token goes in the query). */
export function taskLogRawUrl(taskId: number): string {
  const token = getAccessToken()
  const query = token ? `?${new URLSearchParams({ token })}` : ''
  return `/api/tasks/${taskId}/log/raw${query}`
}

export function taskLogSocketUrl(taskId: number, offset: number, loc: Location = window.location): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:'
  const params = new URLSearchParams({ offset: String(offset) })
  const token = getAccessToken()
  if (token) params.set('token', token)
  return `${scheme}//${loc.host}/api/tasks/${taskId}/log/ws?${params}`
}

/** Streams a task's output from `offset`; returns a function that closes the socket. */
export function openTaskLog(taskId: number, offset: number, handlers: LogStreamHandlers): () => void {
  const socket = new WebSocket(taskLogSocketUrl(taskId, offset))
  let closedByUs = false
  socket.onopen = () => handlers.onOpen?.()
  socket.onmessage = (event: MessageEvent) => {
    let frame: LogFrame
    try {
      frame = JSON.parse(String(event.data)) as LogFrame
    } catch {
      return // A frame we cannot read carries nothing we could show.
    }
    handlers.onFrame(frame)
  }
  socket.onclose = () => {
    if (!closedByUs) handlers.onClose?.()
  }
  return () => {
    closedByUs = true
    socket.close()
  }
}

export function listTemplates(): Promise<Template[]> {
  return request('GET', '/templates')
}

export function createTemplate(payload: TemplatePayload): Promise<Template> {
  return request('POST', '/templates', payload)
}

export function updateTemplate(id: number, payload: TemplateChanges): Promise<Template> {
  return request('PUT', `/templates/${id}`, payload)
}

export function deleteTemplate(id: number): Promise<void> {
  return request('DELETE', `/templates/${id}`)
}

export function listAgents(subAgents: 'recent' | 'all' = 'recent'): Promise<MainAgent[]> {
  return request('GET', `/agents?sub_agents=${subAgents}`)
}

export function getAgent(id: string | number): Promise<Agent> {
  return request('GET', `/agents/${encodeURIComponent(String(id))}`)
}

/** The main agent takes no new tasks; the ones it runs finish. Answers the agent with its sub-agents. */
export function drainAgent(id: string | number): Promise<Agent> {
  return request('POST', `/agents/${encodeURIComponent(String(id))}/drain`)
}

export function resumeAgent(id: string | number): Promise<Agent> {
  return request('POST', `/agents/${encodeURIComponent(String(id))}/resume`)
}

/** Forgets an offline main agent and its sub-agents (the server answers 409 while it is online). */
export function forgetAgent(id: string | number): Promise<void> {
  return request('DELETE', `/agents/${encodeURIComponent(String(id))}`)
}

export function getHealth(): Promise<Health> {
  return request('GET', '/health')
}
