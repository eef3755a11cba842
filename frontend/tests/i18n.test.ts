import { describe, expect, it } from 'vitest'
import en from '@/i18n/en'
import zh from '@/i18n/zh'
import { detectLocale } from '@/i18n'

function keys(messages: object, prefix = ''): string[] {
  return Object.entries(messages).flatMap(([key, value]) =>
    typeof value === 'object' && value !== null ? keys(value, `${prefix}${key}.`) : [`${prefix}${key}`],
  )
}

describe('i18n', () => {
  it('has the same keys in zh and en', () => {
    expect(keys(zh).sort()).toEqual(keys(en).sort())
  })

  it('has no empty messages', () => {
    for (const messages of [en, zh]) {
      for (const key of keys(messages)) {
        const value = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], messages)
        expect(typeof value === 'string' && value.trim().length > 0, key).toBe(true)
      }
    }
  })

  it('picks the saved locale, else Chinese for zh* browsers, else English', () => {
    expect(detectLocale('en', 'zh-CN')).toBe('en')
    expect(detectLocale(null, 'zh-TW')).toBe('zh')
    expect(detectLocale(null, 'de-DE')).toBe('en')
    expect(detectLocale('fr', undefined)).toBe('en')
  })
})
