/**
 * Lazily loaded chunks that may fail (server unreachable once, or a redeploy renamed them). Browsers remember a
 * failed `import(url)` for the page's life, so a retry imports the same URL with `?retry=n` (a new module), which
 * works when the failed chunk is a dynamic entry whose own imports were never fetched.
 */

/** Waits between attempts, in ms: quick at first, then every 30 s. */
export function backoffDelay(failures: number): number {
  const steps = [1000, 2000, 4000, 8000, 15000]
  return failures <= 0 ? 0 : (steps[failures - 1] ?? 30000)
}

/** The chunk's URL from a failed dynamic import's message (Chromium and Firefox name it), else null. */
export function moduleUrlFromError(err: unknown): string | null {
  const message = err instanceof Error ? err.message : String(err)
  const match = /(https?:\/\/[^\s'"]+?\.m?js)(\?[^\s'"]*)?/.exec(message)
  return match ? match[1] : null
}

export function withRetryQuery(url: string, attempt: number): string {
  return `${url}${url.includes('?') ? '&' : '?'}retry=${attempt}`
}

export interface RetryingImport<T> {
  /** The module, from the first import or a retry; rejects when this attempt fails (call again to retry). */
  load(): Promise<T>
  /** Attempts that failed so far. */
  failures(): number
}

/**
 * `first` is the bundler's own `import()`; later attempts import the failed URL again with a retry query through
 * `importUrl` (a plain dynamic import), or `first` again when the browser did not say which URL failed.
 */
export function retryingImport<T>(first: () => Promise<T>, importUrl: (url: string) => Promise<T>): RetryingImport<T> {
  let loaded: Promise<T> | null = null
  let pending: Promise<T> | null = null
  let failedUrl: string | null = null
  let failed = 0

  function attempt(): Promise<T> {
    if (failed === 0 || !failedUrl) return first()
    return importUrl(withRetryQuery(failedUrl, failed))
  }

  function load(): Promise<T> {
    if (loaded) return loaded
    if (pending) return pending
    pending = attempt().then(
      (module) => {
        loaded = Promise.resolve(module)
        pending = null
        return module
      },
      (err: unknown) => {
        failed += 1
        failedUrl = failedUrl ?? moduleUrlFromError(err)
        pending = null
        throw err
      },
    )
    return pending
  }

  return { load, failures: () => failed }
}
