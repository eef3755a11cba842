import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { Task } from '@/api'

const shown: string[] = []

class FakeNotification {
  static permission = 'granted'
  static requestPermission = vi.fn(async () => FakeNotification.permission)
  onclick: (() => void) | null = null
  constructor(title: string) {
    shown.push(title)
  }
}

function task(id: number, status: Task['status']): Task {
  return { id, name: `t${id}`, status, status_reason: null } as Task
}

describe('desktop notifications', () => {
  beforeEach(() => {
    vi.resetModules()
    localStorage.clear()
    shown.length = 0
    FakeNotification.permission = 'granted'
    vi.stubGlobal('Notification', FakeNotification)
  })

  it('announces a submitted task once when it is seen finished, and forgets it', async () => {
    const notify = await import('@/utils/desktopNotify')
    expect(await notify.setEnabled(true)).toBe(true)
    notify.watchTasks([5, 6])
    notify.noticeTasks([task(5, 'running'), task(6, 'failed')])
    notify.noticeTasks([task(6, 'failed')])
    expect(shown).toEqual(['Task #6 Failed'])
    expect(notify.watchedIds()).toEqual([5])
  })

  it('announces the task shown in the details when it finishes there', async () => {
    const notify = await import('@/utils/desktopNotify')
    await notify.setEnabled(true)
    notify.noticeTasks([task(9, 'completed')], task(9, 'running'))
    notify.noticeTasks([task(10, 'completed')], task(10, 'completed')) // was already over when opened
    notify.noticeTasks([task(11, 'completed')]) // neither submitted here nor open
    expect(shown).toEqual(['Task #9 Completed'])
  })

  it('stays off without the browser permission, and shows nothing while off', async () => {
    const notify = await import('@/utils/desktopNotify')
    FakeNotification.permission = 'denied'
    expect(await notify.setEnabled(true)).toBe(false)
    expect(notify.isEnabled()).toBe(false)
    notify.watchTasks([1])
    notify.noticeTasks([task(1, 'completed')])
    expect(shown).toEqual([])
  })
})
