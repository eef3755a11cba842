import { defineStore } from 'pinia'
import { ref } from 'vue'
import * as api from '@/api'
import type { Agent } from '@/api'

export const useAgentsStore = defineStore('agents', () => {
  const mains = ref<Agent[]>([])
  const showAllSubAgents = ref(false)
  const loaded = ref(false)

  async function fetchAll(): Promise<void> {
    mains.value = await api.listAgents(showAllSubAgents.value ? 'all' : 'recent')
    loaded.value = true
  }

  function setShowAllSubAgents(value: boolean): void {
    showAllSubAgents.value = value
  }

  return { mains, showAllSubAgents, loaded, fetchAll, setShowAllSubAgents }
})
