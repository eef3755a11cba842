import { onMounted, onBeforeUnmount } from 'vue'

/**
 * Runs `task` now and then every `intervalMs` while the page is visible, never two at once.
 * A hidden tab stops polling; coming back runs it at once. Errors go to `onError`.
 * Returns `refresh` to run it out of turn (e.g. after a change the person made).
 */
export function usePolling(task: () => Promise<void>, intervalMs: number, onError: (err: unknown) => void) {
  let timer: ReturnType<typeof setTimeout> | null = null
  let running = false
  let pending = false
  let stopped = false

  function schedule(): void {
    if (timer) clearTimeout(timer)
    timer = null
    if (!stopped && document.visibilityState !== 'hidden') timer = setTimeout(refresh, intervalMs)
  }

  async function refresh(): Promise<void> {
    if (stopped) return
    if (running) {
      pending = true // run again as soon as the current call ends, with the newest state
      return
    }
    running = true
    try {
      await task()
    } catch (err) {
      onError(err)
    } finally {
      running = false
      if (pending) {
        pending = false
        void refresh()
      } else {
        schedule()
      }
    }
  }

  function onVisibilityChange(): void {
    if (document.visibilityState === 'visible') void refresh()
    else if (timer) clearTimeout(timer)
  }

  onMounted(() => {
    document.addEventListener('visibilitychange', onVisibilityChange)
    void refresh()
  })
  onBeforeUnmount(() => {
    stopped = true
    if (timer) clearTimeout(timer)
    document.removeEventListener('visibilitychange', onVisibilityChange)
  })

  return { refresh }
}
