import { createRouter, createWebHistory } from 'vue-router'

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', redirect: { name: 'tasks' } },
    // `/tasks/65` opens task 65's details; filters and page live in the query (composables/useTaskRoute.ts)
    { path: '/tasks/:id(\\d+)?', name: 'tasks', component: () => import('@/views/TasksView.vue') },
    // `/agents/<id>` (or `/agents?agent=<id>`) scrolls to that agent and highlights it
    { path: '/agents/:agentId?', name: 'agents', component: () => import('@/views/AgentsView.vue') },
    { path: '/templates', name: 'templates', component: () => import('@/views/TemplatesView.vue') },
    { path: '/:pathMatch(.*)*', redirect: { name: 'tasks' } },
  ],
})
