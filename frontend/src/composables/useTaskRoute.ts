import { computed, watch, type Ref } from 'vue'
import { useRoute, useRouter } from 'vue-router'
import { useTasksStore } from '@/store/tasks'
import { queryFromState, sameQuery, stateFromQuery, taskIdFromParam } from '@/utils/taskUrl'

/**
 * Keeps the tasks page and its URL in step both ways: filters, page and page size in the query
 * (`/tasks?status=failed&page=2`), the open task in the path (`/tasks/65`). A reload, Back or a shared link
 * shows the same; filters replace the history entry, opening a task pushes one (Back closes it).
 */
export function useTaskRoute(options: { detailOpen: Ref<boolean>; openDetail: (id: number) => Promise<void>; refresh: () => Promise<void> }) {
  const route = useRoute()
  const router = useRouter()
  const tasks = useTasksStore()
  const listQuery = computed(() => queryFromState({ filters: tasks.filters, page: tasks.page, pageSize: tasks.pageSize }))
  const routeTaskId = computed(() => taskIdFromParam(route.params.id as string | undefined))
  let firstRead = true

  watch(
    () => route.query,
    (query) => {
      if (route.name !== 'tasks' || sameQuery(query, listQuery.value)) return
      tasks.setListState(stateFromQuery(query))
      if (!firstRead) void options.refresh() // the first list load is the page's own
    },
    { immediate: true },
  )
  firstRead = false

  watch(listQuery, (query) => {
    if (route.name === 'tasks' && !sameQuery(query, route.query)) void router.replace({ params: route.params, query })
  })

  watch(
    routeTaskId,
    async (id) => {
      if (id == null) {
        options.detailOpen.value = false
      } else if (!options.detailOpen.value || tasks.detail?.id !== id) {
        await options.openDetail(id)
        if (!options.detailOpen.value) void router.replace({ params: { id: '' }, query: route.query }) // no such task
      }
    },
    { immediate: true },
  )

  // Opening a task (or following a link in its dialog) and closing the dialog; a task read while the dialog
  // is still closed (it opens right after) is no close.
  watch([options.detailOpen, () => tasks.detail?.id], ([open, id], [wasOpen]) => {
    if (route.name !== 'tasks') return
    if (open && id != null && id !== routeTaskId.value) {
      void router.push({ name: 'tasks', params: { id: String(id) }, query: route.query })
    } else if (!open && wasOpen && routeTaskId.value != null) {
      void router.push({ name: 'tasks', params: { id: '' }, query: route.query })
    }
  })
}
