import { watchEffect } from 'vue'
import { useRoute } from 'vue-router'
import { useI18n } from 'vue-i18n'
import { useTasksStore } from '@/store/tasks'
import { stateFromQuery, taskIdFromParam } from '@/utils/taskUrl'

const APP = 'task_system'

/** The browser tab says what is open: `#65 train · task_system`, `Tasks: Failed · task_system`, `Agents · …`. */
export function useDocumentTitle(): void {
  const route = useRoute()
  const { t } = useI18n()
  const tasks = useTasksStore()

  watchEffect(() => {
    const parts: string[] = []
    if (route.name === 'tasks') {
      const id = taskIdFromParam(route.params.id as string | undefined)
      const statuses = stateFromQuery(route.query).filters.statuses
      if (id != null) {
        parts.push(tasks.detail?.id === id ? `#${id} ${tasks.detail.name}` : `#${id}`)
      } else {
        parts.push(statuses.length ? `${t('nav.tasks')}: ${statuses.map((s) => t(`status.${s}`)).join(', ')}` : t('nav.tasks'))
      }
    } else if (route.name === 'agents') {
      const agent = route.params.agentId || route.query.agent
      parts.push(agent ? `${t('nav.agents')}: ${String(agent)}` : t('nav.agents'))
    } else if (route.name === 'templates') {
      parts.push(t('nav.templates'))
    }
    document.title = [...parts, APP].join(' · ')
  })
}
