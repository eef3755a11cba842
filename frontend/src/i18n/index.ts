import { createI18n } from 'vue-i18n'
import en from './en'
import zh from './zh'

export type Locale = 'zh' | 'en'
export const LOCALES: Locale[] = ['zh', 'en']
const LOCALE_KEY = 'task_system.locale'

/** The saved choice, else the browser language: zh* gives Chinese, anything else English. */
export function detectLocale(saved: string | null, browserLanguage: string | undefined): Locale {
  if (saved === 'zh' || saved === 'en') return saved
  return browserLanguage?.toLowerCase().startsWith('zh') ? 'zh' : 'en'
}

function readSavedLocale(): string | null {
  try {
    return localStorage.getItem(LOCALE_KEY)
  } catch {
    return null
  }
}

export const i18n = createI18n({
  legacy: false,
  locale: detectLocale(readSavedLocale(), typeof navigator === 'undefined' ? undefined : navigator.language),
  fallbackLocale: 'en',
  messages: { en, zh },
})

export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale
  localStorage.setItem(LOCALE_KEY, locale)
  document.documentElement.lang = locale === 'zh' ? 'zh-CN' : 'en'
}
