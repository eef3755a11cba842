import { onBeforeUnmount, onMounted } from 'vue'
import { shortcutFor, type Shortcut } from '@/utils/shortcuts'

/** True while a dialog, drawer or message box covers the page (its own keys win there; Esc closes it). */
function overlayOpen(): boolean {
  return [...document.querySelectorAll<HTMLElement>('.el-overlay, .el-overlay-message-box')].some(
    (el) => getComputedStyle(el).display !== 'none',
  )
}

/** Calls the page's handler for `n` / `/` pressed outside text fields while no dialog is open. */
export function useShortcuts(handlers: Partial<Record<Shortcut, () => void>>): void {
  function onKeydown(event: KeyboardEvent): void {
    if (event.defaultPrevented) return
    const shortcut = shortcutFor(event)
    const handler = shortcut ? handlers[shortcut] : undefined
    if (!handler || overlayOpen()) return
    event.preventDefault() // `/` would otherwise type itself into the field it focuses
    handler()
  }
  onMounted(() => window.addEventListener('keydown', onKeydown))
  onBeforeUnmount(() => window.removeEventListener('keydown', onKeydown))
}
