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

  /** Puts the server's answer in place of the listed main agent, keeping the sub-agents it shows. */
  function replaceMain(updated: Agent): void {
    mains.value = mains.value.map((m) => (m.id === updated.id ? { ...updated, sub_agents: m.sub_agents } : m))
  }

  async function drain(id: Agent['id']): Promise<void> {
    replaceMain(await api.drainAgent(id))
  }

  async function resume(id: Agent['id']): Promise<void> {
    replaceMain(await api.resumeAgent(id))
  }

  async function forget(id: Agent['id']): Promise<void> {
    await api.forgetAgent(id)
    mains.value = mains.value.filter((m) => m.id !== id)
  }

  return { mains, showAllSubAgents, loaded, fetchAll, setShowAllSubAgents, drain, resume, forget }
})
