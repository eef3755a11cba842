/** Single-key shortcuts (`n` new task, `/` the filter): never while typing, never with a modifier. */
export type Shortcut = 'new-task' | 'focus-filter'

const KEYS: Record<string, Shortcut> = { n: 'new-task', '/': 'focus-filter' }

interface KeyLike {
  key: string
  ctrlKey?: boolean
  metaKey?: boolean
  altKey?: boolean
  isComposing?: boolean
  target?: EventTarget | null
}

/** True for fields that take text: inputs, textareas, selects, anything content-editable (CodeMirror). */
export function isTypingTarget(target: EventTarget | null | undefined): boolean {
  if (!target || typeof (target as Element).closest !== 'function') return false
  const el = target as HTMLElement
  if (el.isContentEditable) return true
  return el.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"], .cm-editor') !== null
}

export function shortcutFor(event: KeyLike): Shortcut | null {
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return null
  if (isTypingTarget(event.target)) return null
  return KEYS[event.key] ?? null
}
