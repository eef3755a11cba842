import { ref } from 'vue'
import { useI18n } from 'vue-i18n'
import type { RetryResult, Task, TaskRetryPayload } from '@/api'
import { useTasksStore } from '@/store/tasks'
import { showError, showSuccess } from '@/utils/errors'

/**
 * The tasks page's retry: load the server's preview (what will be created again), open the dialog, send
 * the overrides, then show the new task (`showTask`).
 */
export function useTaskRetry(showTask: (id: number) => Promise<void>) {
  const { t } = useI18n()
  const tasks = useTasksStore()
  const retryOpen = ref(false)
  const retrying = ref(false)
  const preview = ref<RetryResult | null>(null)

  async function startRetry(task: Task): Promise<void> {
    try {
      preview.value = await tasks.retryPreview(task.id)
      retryOpen.value = true
    } catch (err) {
      showError(err)
    }
  }

  async function submitRetry(overrides: TaskRetryPayload): Promise<void> {
    if (!preview.value) return
    const old = preview.value.task
    retrying.value = true
    try {
      const result = await tasks.retry(old.id, overrides)
      retryOpen.value = false
      const n = result.dependents.length
      showSuccess(t('retry.done', { old: old.id, id: result.task.id, n }, n))
      await showTask(result.task.id)
    } catch (err) {
      showError(err)
    } finally {
      retrying.value = false
    }
  }

  return { retryOpen, retrying, preview, startRetry, submitRetry }
}
