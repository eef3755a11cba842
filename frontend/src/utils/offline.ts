/** "offline since 16:11 (5 min ago)": the clock time (with the date when not today) and how long ago, rounded. */
export interface OfflineSince {
  time: string
  ago: { unit: 'now' | 'min' | 'h' | 'd'; n: number }
}

export function offlineSince(lastHeard: string | null | undefined, now: Date = new Date()): OfflineSince | null {
  if (!lastHeard) return null
  const since = new Date(lastHeard)
  if (Number.isNaN(since.getTime())) return null
  const pad = (n: number) => String(n).padStart(2, '0')
  const clock = `${pad(since.getHours())}:${pad(since.getMinutes())}`
  const sameDay = since.toDateString() === now.toDateString()
  const time = sameDay ? clock : `${since.getFullYear()}-${pad(since.getMonth() + 1)}-${pad(since.getDate())} ${clock}`
  const minutes = Math.max(0, Math.floor((now.getTime() - since.getTime()) / 60000))
  if (minutes < 1) return { time, ago: { unit: 'now', n: 0 } }
  if (minutes < 60) return { time, ago: { unit: 'min', n: minutes } }
  if (minutes < 48 * 60) return { time, ago: { unit: 'h', n: Math.floor(minutes / 60) } }
  return { time, ago: { unit: 'd', n: Math.floor(minutes / (24 * 60)) } }
}
