/**
 * Template parameters: `{{name}}` placeholders in a script (or a name) become form fields; several
 * comma-separated values make a sweep, one task per combination (the Cartesian product), as the server's
 * POST /api/tasks/sweep makes them.
 */

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g
export const MAX_SWEEP_TASKS = 1000

/** The placeholder names in `texts`, each once, in order of appearance (the server's order). */
export function extractPlaceholders(...texts: string[]): string[] {
  const names: string[] = []
  for (const text of texts) {
    for (const match of text.matchAll(PLACEHOLDER)) {
      if (!names.includes(match[1])) names.push(match[1])
    }
  }
  return names
}

/** "1e-3, 3e-4，1e-4" → the values, trimmed, blanks and repeats dropped. */
export function splitValues(text: string): string[] {
  const values: string[] = []
  for (const raw of text.split(/[,，]/)) {
    const value = raw.trim()
    if (value && !values.includes(value)) values.push(value)
  }
  return values
}

export function fillPlaceholders(text: string, values: Record<string, string>): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => values[name] ?? whole)
}

/** How many tasks `params` makes: the product of the value counts. */
export function combinationCount(params: Record<string, string[]>): number {
  return Object.values(params).reduce((count, values) => count * values.length, 1)
}

/** The first `limit` combinations, the last parameter varying fastest (as the server orders them). */
export function combinations(params: Record<string, string[]>, limit = Infinity): Record<string, string>[] {
  const names = Object.keys(params)
  const total = Math.min(combinationCount(params), limit)
  const result: Record<string, string>[] = []
  for (let index = 0; index < total; index++) {
    const combo: Record<string, string> = {}
    let rest = index
    for (let i = names.length - 1; i >= 0; i--) {
      const values = params[names[i]]
      combo[names[i]] = values[rest % values.length]
      rest = Math.floor(rest / values.length)
    }
    result.push(Object.fromEntries(names.map((n) => [n, combo[n]])))
  }
  return result
}

/** The name to send: as typed when it has placeholders, else with them appended (`train [lr={{lr}}]`),
 * so each task is named with its values. */
export function sweepName(name: string, names: string[]): string {
  if (extractPlaceholders(name).length || !names.length) return name
  return `${name} [${names.map((n) => `${n}={{${n}}}`).join(', ')}]`
}

export interface SweepPlan {
  /** The placeholders of the name and the script: one field each. */
  names: string[]
  /** The name sent to the server (placeholders appended when it had none). */
  name: string
  params: Record<string, string[]>
  /** Tasks it makes; 0 while a placeholder has no value. */
  count: number
  /** The names of the first few tasks. */
  preview: string[]
}

/** What the form would submit for these field texts (`texts[name]`: comma-separated values). */
export function planSweep(name: string, script: string, texts: Record<string, string>, previewCount = 5): SweepPlan {
  const names = extractPlaceholders(name, script)
  const sentName = sweepName(name.trim(), names)
  const params = Object.fromEntries(names.map((n) => [n, splitValues(texts[n] ?? '')]))
  const count = names.length ? combinationCount(params) : 0
  const preview = count ? combinations(params, previewCount).map((values) => fillPlaceholders(sentName, values)) : []
  return { names, name: sentName, params, count, preview }
}
