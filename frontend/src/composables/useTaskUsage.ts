import { ref } from 'vue'
import * as api from '@/api'
import type { UsageSample } from '@/api'
import { usePolling } from '@/composables/usePolling'
import { showError } from '@/utils/errors'

export const USAGE_POLL_MS = 4000

/**
 * A task's resource samples, reloaded every few seconds while it runs (and once more after it ends,
 * for the last ones), until the component that uses it goes away.
 */
export function useTaskUsage(taskId: number, isRunning: () => boolean) {
  const samples = ref<UsageSample[]>([])
  const loaded = ref(false)
  let settled = false

  usePolling(
    async () => {
      if (loaded.value && settled) return
      settled = !isRunning()
      samples.value = (await api.getTaskUsage(taskId)).samples
      loaded.value = true
    },
    USAGE_POLL_MS,
    showError,
  )

  /** A task that starts running again (after a hand-over) is followed again. */
  function wake(): void {
    if (isRunning()) settled = false
  }

  return { samples, loaded, wake }
}
