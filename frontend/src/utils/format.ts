/** Display formatting shared by every page: dates in the viewer's time zone, durations, sizes. */

const EMPTY = '—'

/**
 * Formats an ISO 8601 timestamp as `YYYY-MM-DD HH:mm:ss` in `timeZone`
 * (default: the viewer's own zone). Unparseable or missing values become a dash.
 */
export function formatDateTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return EMPTY
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return EMPTY
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(date)
  const get = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? ''
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}:${get('second')}`
}

/** Formats seconds as `1d 02:03:04`, `02:03:04` or `03:04`. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return EMPTY
  const total = Math.floor(seconds)
  const days = Math.floor(total / 86400)
  const hours = Math.floor((total % 86400) / 3600)
  const minutes = Math.floor((total % 3600) / 60)
  const secs = total % 60
  const pad = (n: number) => String(n).padStart(2, '0')
  const clock = hours || days ? `${pad(hours)}:${pad(minutes)}:${pad(secs)}` : `${pad(minutes)}:${pad(secs)}`
  return days ? `${days}d ${clock}` : clock
}

/** Formats a size in MiB as MiB below 1 GiB and GiB (one decimal) above. */
export function formatMiB(mib: number | null | undefined): string {
  if (mib === null || mib === undefined || !Number.isFinite(mib)) return EMPTY
  if (Math.abs(mib) < 1024) return `${Math.round(mib)} MiB`
  return `${(mib / 1024).toFixed(1)} GiB`
}

export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return EMPTY
  return `${value.toFixed(1)}%`
}

/** A byte count for people: `512 B`, `12.0 KiB`, `48.2 MiB`, `1.5 GiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${value.toFixed(1)} ${units[unit]}`
}
