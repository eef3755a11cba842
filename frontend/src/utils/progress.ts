/** A task's progress as people read it: `45% · ETA 1m40s · 80.0 it/s`. */
import type { TaskProgress } from '@/api'

/** Seconds left as at most two units: `40s`, `1m40s`, `2h05m`, `3d04h`. Unknown or negative: ''. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return ''
  const total = Math.round(seconds)
  const pad = (n: number) => String(n).padStart(2, '0')
  if (total < 60) return `${total}s`
  if (total < 3600) return `${Math.floor(total / 60)}m${pad(total % 60)}s`
  if (total < 86400) return `${Math.floor(total / 3600)}h${pad(Math.floor((total % 3600) / 60))}m`
  return `${Math.floor(total / 86400)}d${pad(Math.floor((total % 86400) / 3600))}h`
}

/** Units per second as tqdm writes them: `80.0 it/s`, or `12.5 s/it` when slower than one a second. */
export function formatRate(rate: number | null | undefined): string {
  if (rate === null || rate === undefined || !Number.isFinite(rate) || rate <= 0) return ''
  if (rate >= 1) return `${rate >= 100 ? Math.round(rate) : rate.toFixed(1)} it/s`
  return `${(1 / rate).toFixed(1)} s/it`
}

/** 0–100 for a progress bar: the percent, else current/total, else null (nothing to draw). */
export function progressPercent(progress: TaskProgress | null | undefined): number | null {
  if (!progress) return null
  let percent = progress.percent
  if ((percent === null || percent === undefined) && progress.total && progress.current !== null) {
    percent = (progress.current / progress.total) * 100
  }
  if (percent === null || percent === undefined || !Number.isFinite(percent)) return null
  return Math.min(100, Math.max(0, percent))
}

/** The parts shown after the bar: percent, `current/total`, ETA and rate (ETA and rate only while it runs). */
export function progressParts(progress: TaskProgress, running: boolean): { percent: string; count: string; eta: string; rate: string } {
  const percent = progressPercent(progress)
  const count = progress.total ? `${progress.current ?? 0}/${progress.total}` : ''
  return {
    percent: percent === null ? '' : `${Math.floor(percent)}%`,
    count,
    eta: running ? formatEta(progress.eta_s) : '',
    rate: running ? formatRate(progress.rate) : '',
  }
}
