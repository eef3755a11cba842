import { ref } from 'vue'

/** Below this width the sidebar is a drawer, the task list is cards and dialogs take the whole screen. */
export const MOBILE_QUERY = '(max-width: 768px)'

const isMobile = ref(false)
let started = false

function start(): void {
  if (started || typeof window === 'undefined' || !window.matchMedia) return
  started = true
  const query = window.matchMedia(MOBILE_QUERY)
  isMobile.value = query.matches
  query.addEventListener?.('change', (event) => {
    isMobile.value = event.matches
  })
}

/** A shared ref, true on small screens; e.g. `<el-dialog :fullscreen="isMobile">`. */
export function useIsMobile() {
  start()
  return isMobile
}

/** Below this width the task table leaves out its optional columns (template, priority, run time). */
export const NARROW_QUERY = '(max-width: 1280px)'
const isNarrow = ref(false)
let narrowStarted = false

/** A shared ref, true on screens too narrow for every column of the task table. */
export function useIsNarrow() {
  if (!narrowStarted && typeof window !== 'undefined' && window.matchMedia) {
    narrowStarted = true
    const query = window.matchMedia(NARROW_QUERY)
    isNarrow.value = query.matches
    query.addEventListener?.('change', (event) => {
      isNarrow.value = event.matches
    })
  }
  return isNarrow
}
