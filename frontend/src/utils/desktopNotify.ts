/**
 * Opt-in desktop notifications (the browser's Notification API) when a task this browser submitted, or
 * one whose details are open, finishes. The choice and the submitted ids are kept in localStorage; the
 * finish is noticed by the polling the pages already do.
 */
import type { Task } from '@/api'
import { FINISHED_STATUSES } from '@/api'
import { i18n } from '@/i18n'

const ENABLED_KEY = 'task_system.notify.enabled'
const WATCHED_KEY = 'task_system.notify.watched'
/** Ids kept at most: a few large sweeps' worth. */
const MAX_WATCHED = 2000
/** Tasks announced in this page's life: a task seen finished by two polls is announced once. */
const announced = new Set<number>()

export function isSupported(): boolean {
  return typeof window !== 'undefined' && 'Notification' in window
}

export function isEnabled(): boolean {
  return isSupported() && localStorage.getItem(ENABLED_KEY) === '1' && Notification.permission === 'granted'
}

/** Turns notifications on (asking the browser's permission) or off; resolves to whether they are on. */
export async function setEnabled(on: boolean): Promise<boolean> {
  if (!on || !isSupported()) {
    localStorage.removeItem(ENABLED_KEY)
    return false
  }
  const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission()
  if (permission !== 'granted') return false
  localStorage.setItem(ENABLED_KEY, '1')
  return true
}

export function watchedIds(): number[] {
  try {
    const ids: unknown = JSON.parse(localStorage.getItem(WATCHED_KEY) ?? '[]')
    return Array.isArray(ids) ? ids.filter((id): id is number => Number.isInteger(id)) : []
  } catch {
    return []
  }
}

function saveWatched(ids: number[]): void {
  localStorage.setItem(WATCHED_KEY, JSON.stringify(ids.slice(-MAX_WATCHED)))
}

/** Remembers tasks this browser submitted, to tell when they finish. */
export function watchTasks(ids: number[]): void {
  const watched = watchedIds()
  saveWatched([...watched, ...ids.filter((id) => !watched.includes(id))])
}

export function unwatchTask(id: number): void {
  saveWatched(watchedIds().filter((watched) => watched !== id))
}

function notify(task: Task): void {
  const t = i18n.global.t
  const note = new Notification(t('notify.title', { id: task.id, status: t(`status.${task.status}`) }), {
    body: task.status_reason ? `${task.name}\n${task.status_reason}` : task.name,
    tag: `task-${task.id}`,
  })
  note.onclick = () => window.focus()
}

/**
 * Looks at tasks as the pages poll them: a watched task seen finished is announced (once) and forgotten;
 * `previous` is the same task as last seen, for a task shown in the details dialog.
 */
export function noticeTasks(tasks: Task[], previous?: Task | null): void {
  const finished = tasks.filter((task) => FINISHED_STATUSES.includes(task.status))
  if (!finished.length) return
  const watched = watchedIds()
  const done = finished.filter((task) => !announced.has(task.id) && (watched.includes(task.id)
    || (previous?.id === task.id && !FINISHED_STATUSES.includes(previous.status))))
  if (!done.length) return
  const doneIds = done.map((task) => task.id)
  doneIds.forEach((id) => announced.add(id))
  saveWatched(watched.filter((id) => !doneIds.includes(id)))
  if (isEnabled()) done.forEach(notify)
}
