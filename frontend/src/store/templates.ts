import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import * as api from '@/api'
import type { Template } from '@/api'

export const useTemplatesStore = defineStore('templates', () => {
  const items = ref<Template[]>([])
  const loaded = ref(false)

  const names = computed(() => items.value.map((t) => t.name))

  async function fetchAll(): Promise<void> {
    items.value = await api.listTemplates()
    loaded.value = true
  }

  function findByName(name: string): Template | undefined {
    return items.value.find((t) => t.name === name)
  }

  async function create(name: string, scriptContent: string): Promise<Template> {
    const template = await api.createTemplate({ name, script_content: scriptContent })
    await fetchAll()
    return template
  }

  async function update(id: number, name: string, scriptContent: string): Promise<Template> {
    const template = await api.updateTemplate(id, { name, script_content: scriptContent })
    await fetchAll()
    return template
  }

  async function remove(id: number): Promise<void> {
    await api.deleteTemplate(id)
    items.value = items.value.filter((t) => t.id !== id)
  }

  return { items, loaded, names, fetchAll, findByName, create, update, remove }
})
