import { computed, ref, watchEffect } from 'vue'

/** Light or dark: following the system (`prefers-color-scheme`) unless the person picked one (kept). */
export type ThemeMode = 'auto' | 'light' | 'dark'
export const THEME_MODES: ThemeMode[] = ['auto', 'light', 'dark']
const THEME_KEY = 'task_system.theme'

export function parseThemeMode(saved: string | null | undefined): ThemeMode {
  return saved === 'light' || saved === 'dark' ? saved : 'auto'
}

export function resolveTheme(mode: ThemeMode, systemDark: boolean): 'light' | 'dark' {
  return mode === 'auto' ? (systemDark ? 'dark' : 'light') : mode
}

/** xterm's colours for each theme (the terminal draws its own canvas, so CSS variables do not reach it). */
export const XTERM_THEMES = {
  dark: { background: '#1e1e1e', foreground: '#d4d4d4', cursor: '#1e1e1e', selectionBackground: '#264f78' },
  light: {
    background: '#fbfbfc', foreground: '#24292f', cursor: '#fbfbfc', selectionBackground: '#c8ddf8',
    black: '#24292f', red: '#cf222e', green: '#116329', yellow: '#7d4e00', blue: '#0969da', magenta: '#8250df',
    cyan: '#1b7c83', white: '#6e7781', brightBlack: '#57606a', brightRed: '#a40e26', brightGreen: '#1a7f37',
    brightYellow: '#633c01', brightBlue: '#218bff', brightMagenta: '#a475f9', brightCyan: '#3192aa', brightWhite: '#8c959f',
  },
} as const

function readSaved(): string | null {
  try {
    return localStorage.getItem(THEME_KEY)
  } catch {
    return null
  }
}

const mode = ref<ThemeMode>(parseThemeMode(readSaved()))
const systemDark = ref(false)
const theme = computed(() => resolveTheme(mode.value, systemDark.value))
let started = false

/** Follows the system setting and keeps `html.dark` in step (Element Plus's dark CSS variables hang on it). */
export function startTheme(): void {
  if (started || typeof window === 'undefined') return
  started = true
  const query = window.matchMedia?.('(prefers-color-scheme: dark)')
  if (query) {
    systemDark.value = query.matches
    query.addEventListener?.('change', (event) => {
      systemDark.value = event.matches
    })
  }
  watchEffect(() => {
    document.documentElement.classList.toggle('dark', theme.value === 'dark')
    document.documentElement.style.colorScheme = theme.value
  })
}

export function setThemeMode(next: ThemeMode): void {
  mode.value = next
  try {
    localStorage.setItem(THEME_KEY, next)
  } catch {
    // private mode: the choice lasts for this page only
  }
}

/** The theme for components: `isDark`, the chosen `mode`, and xterm's matching `xtermTheme`. */
export function useTheme() {
  return {
    mode,
    theme,
    isDark: computed(() => theme.value === 'dark'),
    xtermTheme: computed(() => XTERM_THEMES[theme.value]),
    setMode: setThemeMode,
  }
}
