import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  ApiError,
  cancelTask,
  createTemplate,
  deleteTemplate,
  getTaskLog,
  listTasks,
  onUnauthorized,
  setAccessToken,
  taskLogSocketUrl,
} from '@/api'

function jsonResponse(status: number, body: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  })
}

const fetchMock = vi.fn()

beforeEach(() => {
  fetchMock.mockReset()
  vi.stubGlobal('fetch', fetchMock)
  localStorage.clear()
})

afterEach(() => {
  vi.unstubAllGlobals()
  onUnauthorized(null)
})

describe('api errors', () => {
  it('parses the contract error body into ApiError', async () => {
    fetchMock.mockResolvedValue(jsonResponse(409, { error: { code: 'task_finished', message: 'Task 7 already finished.' } }))
    const err = await cancelTask(7).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ status: 409, code: 'task_finished', message: 'Task 7 already finished.' })
  })

  it('falls back to the HTTP status when the body is not the contract shape', async () => {
    fetchMock.mockResolvedValue(new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }))
    const err = await listTasks({ page: 1, page_size: 20 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ status: 502, code: 'http_error', message: 'HTTP 502 Bad Gateway' })
  })

  it('turns a failed fetch into a network_error', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'))
    const err = await listTasks({ page: 1, page_size: 20 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ status: 0, code: 'network_error' })
  })

  it('calls the unauthorized handler on 401 and still throws', async () => {
    const handler = vi.fn()
    onUnauthorized(handler)
    fetchMock.mockResolvedValue(jsonResponse(401, { error: { code: 'unauthorized', message: 'Token required.' } }))
    await expect(listTasks({ page: 1, page_size: 20 })).rejects.toMatchObject({ status: 401, code: 'unauthorized' })
    expect(handler).toHaveBeenCalledOnce()
  })
})

describe('api requests', () => {
  it('builds the task list query, leaving out empty filters', async () => {
    fetchMock.mockResolvedValue(jsonResponse(200, { items: [], total: 0, page: 2, page_size: 50 }))
    await listTasks({ status: ['running', 'failed'], name: 'train', page: 2, page_size: 50 })
    const url = new URL(fetchMock.mock.calls[0][0] as string, 'http://x')
    expect(url.pathname).toBe('/api/tasks')
    expect(url.searchParams.get('status')).toBe('running,failed')
    expect(url.searchParams.get('name')).toBe('train')
    expect(url.searchParams.has('template_type')).toBe(false)
    expect(url.searchParams.has('script')).toBe(false)
    expect(url.searchParams.get('page')).toBe('2')
    expect(url.searchParams.get('page_size')).toBe('50')
  })

  it('sends JSON bodies and the bearer token', async () => {
    setAccessToken('s3cret')
    fetchMock.mockResolvedValue(jsonResponse(201, { id: 1, name: 'a', script_content: 'x', created_time: '' }))
    await createTemplate({ name: 'a', script_content: 'echo hi' })
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit]
    expect(url).toBe('/api/templates')
    expect(init.method).toBe('POST')
    expect(JSON.parse(init.body as string)).toEqual({ name: 'a', script_content: 'echo hi' })
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer s3cret')
  })

  it('accepts 204 without a body', async () => {
    fetchMock.mockResolvedValue(new Response(null, { status: 204 }))
    await expect(deleteTemplate(3)).resolves.toBeUndefined()
  })

  it('asks for a log tail or a byte range', async () => {
    fetchMock.mockImplementation(async () => jsonResponse(200, { task_id: 5, offset: 0, next_offset: 0, size: 0, data: '' }))
    await getTaskLog(5, { tail: 262144 })
    await getTaskLog(5, { offset: 100, limit: 50 })
    expect(fetchMock.mock.calls[0][0]).toBe('/api/tasks/5/log?tail=262144')
    expect(fetchMock.mock.calls[1][0]).toBe('/api/tasks/5/log?offset=100&limit=50')
  })

  it('computes the WebSocket URL from the page location, with the token', () => {
    const loc = { protocol: 'https:', host: 'example.org:8443' } as Location
    expect(taskLogSocketUrl(9, 1234, loc)).toBe('wss://example.org:8443/api/tasks/9/log/ws?offset=1234')
    setAccessToken('tok')
    const plain = { protocol: 'http:', host: 'localhost:5000' } as Location
    expect(taskLogSocketUrl(9, 0, plain)).toBe('ws://localhost:5000/api/tasks/9/log/ws?offset=0&token=tok')
  })
})
