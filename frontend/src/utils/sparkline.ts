/** An SVG path for a small line chart of percentages; null readings leave a gap. */

/**
 * `values` oldest first, each 0–`max` (clamped) or null. The first value sits at x = 0 and the last at
 * x = width; 100 % is y = 0. Each run of readings is its own `M … L …` segment; a lone reading is a dot-long
 * line so it still shows. Returns '' when there is no reading.
 */
export function sparklinePath(values: (number | null)[], width: number, height: number, max = 100): string {
  const step = values.length > 1 ? width / (values.length - 1) : 0
  const round = (n: number) => Math.round(n * 10) / 10
  const segments: string[] = []
  let segment: string[] = []
  const flush = () => {
    if (segment.length === 1) segment.push(segment[0].replace(/^M/, 'L'))
    if (segment.length) segments.push(segment.join(' '))
    segment = []
  }
  values.forEach((value, i) => {
    if (value === null || !Number.isFinite(value)) {
      flush()
      return
    }
    const y = height - (Math.min(max, Math.max(0, value)) / max) * height
    segment.push(`${segment.length ? 'L' : 'M'}${round(i * step)},${round(y)}`)
  })
  flush()
  return segments.join(' ')
}

/** The latest reading, or null when there is none. */
export function lastReading(values: (number | null)[]): number | null {
  for (let i = values.length - 1; i >= 0; i--) {
    const value = values[i]
    if (value !== null && Number.isFinite(value)) return value
  }
  return null
}
