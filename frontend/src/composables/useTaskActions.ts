import { ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { FINISHED_STATUSES, type Task } from '@/api'
import { useTasksStore } from '@/store/tasks'
import { confirmAction } from '@/utils/confirm'
import { showError, showSuccess } from '@/utils/errors'

/** What both the tasks and the agents page do with one task: show its details, cancel it. */
export function useTaskActions() {
  const { t } = useI18n()
  const tasks = useTasksStore()
  const detailOpen = ref(false)

  async function openDetail(id: number): Promise<void> {
    try {
      await tasks.openDetail(id)
      detailOpen.value = true
    } catch (err) {
      showError(err)
    }
  }

  /** Reloads the task in the open dialog unless it has finished (then nothing changes any more). */
  async function refreshOpenDetail(): Promise<void> {
    const shown = tasks.detail
    if (detailOpen.value && shown && !FINISHED_STATUSES.includes(shown.status)) await tasks.refreshDetail()
  }

  function onStatusChanged(): void {
    tasks.refreshDetail().catch(showError)
  }

  async function cancel(task: Task): Promise<void> {
    const question = t('tasks.cancel.confirm', { id: task.id, name: task.name })
    const choices = { danger: true, confirmText: t('daily.cancelTask.yes'), cancelText: t('daily.cancelTask.keep') }
    if (!(await confirmAction(question, choices))) return
    try {
      await tasks.cancel(task.id)
      showSuccess(t('tasks.cancel.done', { id: task.id }))
    } catch (err) {
      showError(err)
    }
  }

  return { detailOpen, openDetail, refreshOpenDetail, onStatusChanged, cancel }
}
