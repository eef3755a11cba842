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
  if (!parsed) {
    const other = translateOther(text, t) ?? text // e.g. "agent X did not start it: …", "Slurm: PENDING (…)"
    return { short: other, full: other }
  }
  return {
    short: t(`waitReason.short.${parsed.kind}`, parsed.params, 1),
    full: t(`waitReason.full.${parsed.kind}`, fullParams(parsed, t), 1),
  }
}

/**
 * How a task ended or why it runs late, as the server, its agents and describe_returncode word it
 * (task_common/protocol.py, backend/services/tasks.py, liveness.py, heartbeats.py, agent/task_settings.py,
 * agent/sub_agent_process.py, agent/slurm.py), each with the names of its values.
 */
const END_PATTERNS: [string, RegExp, string[]][] = [
  ['exitKilled', /^exit code (\d+) \(killed by (\w+)\)$/, ['code', 'signal']],
  ['exit', /^exit code (-?\d+)$/, ['code']],
  ['killed', /^killed by (SIG\w+|signal \d+)$/, ['signal']],
  ['canceledByUser', /^canceled by a user$/, []],
  ['dependencyFailed', /^dependency (\d+) failed$/, ['id']],
  ['dependencyCanceled', /^dependency (\d+) was canceled$/, ['id']],
  ['timeLimit', /^time limit of (\d+)s reached$/, ['seconds']],
  ['workDirMissing', /^work_dir (.+) does not exist on (.+)$/, ['path', 'agent']],
  ['subAgentDied', /^sub-agent died$/, []],
  ['subAgentExitedRestart', /^sub-agent exited unexpectedly while its main agent was restarting \(exit status unknown\)$/, []],
  ['subAgentExited', /^sub-agent exited unexpectedly \((.+)\)$/, ['why']],
  ['notStartedBy', /^agent (.+?) did not start it: (.+)$/, ['agent', 'why']],
  ['refusedBy', /^refused by agent (.+?): (.+)$/, ['agent', 'why']],
  ['outputNotStored', /^could not store the task's output on the server: (.+)$/, ['why']],
  ['agentSilent', /^agent lost: no sign of the task for (\d+) s \(its sub-agent is silent and main agent (.+) does not report it running\)$/, ['seconds', 'agent']],
  ['agentUnreachable', /^agent lost: main agent (.+) unreachable for (\d+) s \(.*is ([\d.]+) s\)$/, ['agent', 'seconds', 'limit']],
  ['slurm', /^Slurm: (\w+)(?: \((.+)\))?$/, ['state', 'why']],
]
/** Values that are themselves reasons (an exit code inside "sub-agent exited unexpectedly (…)"). */
const NESTED = new Set(['why'])

/** Any reason the server writes (waiting, ended, running late) in the viewer's language; unknown text as is. */
export function translateReason(reason: string | null | undefined, t: Translate): string | null {
  const text = reason?.trim()
  if (!text) return null
  return describeReason(text, t)?.full ?? text
}

/** An END_PATTERNS reason translated, or null. */
function translateOther(text: string, t: Translate): string | null {
  for (const [kind, pattern, names] of END_PATTERNS) {
    const match = pattern.exec(text)
    if (!match) continue
    const params: Record<string, string> = {}
    names.forEach((name, i) => {
      const value = match[i + 1] ?? ''
      params[name] = NESTED.has(name) && value ? translateReason(value, t) ?? value : value
    })
    if (kind === 'slurm') return t(params.why ? 'statusReason.slurmWhy' : 'statusReason.slurm', params, 1)
    return t(`statusReason.${kind}`, params, 1)
  }
  return null
}

/** Whether the reason already names the exit code or signal (the failed banner then leaves it out). */
export function reasonNamesExit(reason: string | null | undefined): boolean {
  return /\bexit code -?\d+|\bkilled by \w+/.test(reason ?? '')
}
