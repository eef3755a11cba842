import { ref } from 'vue'
import * as api from '@/api'
import { FINISHED_STATUSES, type TaskGraph } from '@/api'
import { usePolling } from '@/composables/usePolling'
import { showError } from '@/utils/errors'

export const GRAPH_POLL_MS = 5000

/** A task's chain, reloaded every few seconds while any task in it is unfinished (statuses change). */
export function useTaskGraph(taskId: number) {
  const graph = ref<TaskGraph | null>(null)

  usePolling(
    async () => {
      if (graph.value && graph.value.nodes.every((node) => FINISHED_STATUSES.includes(node.status))) return
      graph.value = await api.getTaskGraph(taskId)
    },
    GRAPH_POLL_MS,
    showError,
  )

  return { graph }
}
