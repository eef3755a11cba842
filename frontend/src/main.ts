import { createApp } from 'vue'
import { createPinia } from 'pinia'
import 'element-plus/theme-chalk/base.css'
import 'element-plus/theme-chalk/dark/css-vars.css'
import App from './App.vue'
import { startTheme } from './composables/useTheme'
import { i18n } from './i18n'
import { router } from './router'
import './styles.css'

startTheme() // html.dark before the first paint, from the saved choice or the system setting
createApp(App).use(createPinia()).use(router).use(i18n).mount('#app')
