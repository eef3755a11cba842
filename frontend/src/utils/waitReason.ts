/**
 * Why a task waits, as the server words it (backend/services/waiting_reasons.py, and "waiting for
 * dependencies 3, 4" for a blocked task), recognised so that it can be shown in the viewer's language:
 * a short label for the list and the full sentence, with the server's numbers kept. A reason not
 * recognised is shown as the server wrote it.
 */

export type Translate = (key: string, named: Record<string, unknown>, plural: number) => string

export type ReasonKind = 'dependencies' | 'noAgent' | 'noAgentOnline' | 'resources' | 'resourcesKept' | 'priority'

export interface ParsedReason {
  kind: ReasonKind
  params: Record<string, string>
}

const PATTERNS: [ReasonKind, RegExp, string[]][] = [
  ['dependencies', /^waiting for dependencies ([\d, ]+)$/, ['ids']],
  ['noAgentOnline', /^no online agent can run it: no agent is online and taking tasks$/, []],
  ['noAgent', /^no online agent can run it \(largest: (\d+) cores?, (\d+) GPUs?(?:, (.+) per GPU)?\)$/, ['cores', 'gpus', 'size']],
  ['resourcesKept', /^waiting for resources: (.+); agent (.+) keeps room for it as tasks there end$/, ['what', 'agent']],
  ['resources', /^waiting for resources: no agent has (.+) free now$/, ['what']],
  ['priority', /^waiting for priority: /, []],
]

/** The reason's kind and the values it names, or null for wording this UI does not know. */
export function parseReason(reason: string | null | undefined): ParsedReason | null {
  const text = reason?.trim()
  if (!text) return null
  for (const [kind, pattern, names] of PATTERNS) {
    const match = pattern.exec(text)
    if (!match) continue
    const params: Record<string, string> = {}
    names.forEach((name, i) => {
      params[name] = match[i + 1] ?? ''
    })
    return { kind, params }
  }
  return null
}

const WHAT_PIECES: [RegExp, string][] = [
  [/^(\d+) cores?$/, 'waitReason.what.cores'],
  [/^(\d+) whole GPUs?$/, 'waitReason.what.wholeGpus'],
  [/^(\d+) GPUs? with (.+) free$/, 'waitReason.what.gpusWithMemory'],
  [/^(\d+) GPUs?$/, 'waitReason.what.gpus'],
]

/** "2 cores and 1 GPU with 40 GiB free" in the viewer's language (a piece not recognised stays as is). */
export function translateWhat(what: string, t: Translate): string {
  const pieces = what.split(' and ').map((piece) => {
    if (piece === 'room') return t('waitReason.what.room', {}, 1)
    for (const [pattern, key] of WHAT_PIECES) {
      const match = pattern.exec(piece)
      if (match) return t(key, { n: Number(match[1]), size: match[2] ?? '' }, Number(match[1]))
    }
    return piece
  })
  return pieces.join(t('waitReason.what.and', {}, 1))
}

function fullParams(parsed: ParsedReason, t: Translate): Record<string, unknown> {
  const { params } = parsed
  if (parsed.kind === 'noAgent') {
    return { ...params, perGpu: params.size ? t('waitReason.perGpu', { size: params.size }, 1) : '' }
  }
  if (params.what !== undefined) return { ...params, what: translateWhat(params.what, t) }
  return params
}

/** The label for the list and the full sentence; both are the server's text when it is not recognised. */
export function describeReason(reason: string | null | undefined, t: Translate): { short: string; full: string } | null {
  const text = reason?.trim()
  if (!text) return null
  const parsed = parseReason(text)
  if (!parsed) return { short: text, full: text }
  return {
    short: t(`waitReason.short.${parsed.kind}`, parsed.params, 1),
    full: t(`waitReason.full.${parsed.kind}`, fullParams(parsed, t), 1),
  }
}
