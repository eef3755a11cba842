import { afterEach, describe, expect, it } from 'vitest'
import { i18n } from '@/i18n'
import { describeReason, parseReason, reasonNamesExit, translateReason, type Translate } from '@/utils/waitReason'

const t = i18n.global.t as unknown as Translate
const inLocale = (locale: 'en' | 'zh', reason: string | null) => {
  i18n.global.locale.value = locale
  return describeReason(reason, t)
}

afterEach(() => {
  i18n.global.locale.value = 'en'
})

describe('parseReason', () => {
  it('recognises every reason the server writes, keeping its numbers', () => {
    expect(parseReason('waiting for dependencies 3, 4')).toEqual({ kind: 'dependencies', params: { ids: '3, 4' } })
    expect(parseReason('no online agent can run it (largest: 8 cores, 4 GPUs, 80 GiB per GPU)'))
      .toEqual({ kind: 'noAgent', params: { cores: '8', gpus: '4', size: '80 GiB' } })
    expect(parseReason('no online agent can run it (largest: 4 cores, 0 GPUs)'))
      .toEqual({ kind: 'noAgent', params: { cores: '4', gpus: '0', size: '' } })
    expect(parseReason('no online agent can run it: no agent is online and taking tasks')?.kind).toBe('noAgentOnline')
    expect(parseReason('waiting for resources: no agent has 2 cores and 1 whole GPU free now'))
      .toEqual({ kind: 'resources', params: { what: '2 cores and 1 whole GPU' } })
    expect(parseReason('waiting for resources: 1 core and 2 GPUs with 40 GiB free; agent gpu-box keeps room for it as tasks there end'))
      .toEqual({ kind: 'resourcesKept', params: { what: '1 core and 2 GPUs with 40 GiB free', agent: 'gpu-box' } })
    expect(parseReason('waiting for priority: tasks ahead of it in the queue go first')?.kind).toBe('priority')
  })

  it('does not recognise other text', () => {
    expect(parseReason('canceled by user')).toBeNull()
    expect(parseReason('')).toBeNull()
    expect(parseReason(null)).toBeNull()
  })
})

describe('describeReason', () => {
  it('gives a short label and the full sentence in English', () => {
    expect(inLocale('en', 'no online agent can run it (largest: 8 cores, 4 GPUs, 80 GiB per GPU)')).toEqual({
      short: 'No agent can run it',
      full: 'No online agent can run it (largest: 8 cores, 4 GPUs, 80 GiB per GPU)',
    })
    expect(inLocale('en', 'waiting for resources: no agent has 1 core and 1 GPU with 512 MiB free now')?.full)
      .toBe('Waiting for resources: no agent has 1 core and 1 GPU with 512 MiB free now')
  })

  it('translates the known patterns into Chinese, keeping the server numbers', () => {
    expect(inLocale('zh', 'no online agent can run it (largest: 8 cores, 4 GPUs, 80 GiB per GPU)')).toEqual({
      short: '没有 Agent 能运行',
      full: '没有在线 Agent 能运行它（最大：8 核，4 块 GPU，每块 80 GiB）',
    })
    expect(inLocale('zh', 'waiting for dependencies 3, 4')?.full).toBe('等待依赖任务 3, 4 完成')
    expect(inLocale('zh', 'waiting for resources: no agent has 2 cores and 1 whole GPU free now')?.full)
      .toBe('等待资源：目前没有 Agent 空出 2 个核心 和 1 块整卡 GPU')
    expect(inLocale('zh', 'waiting for resources: 2 GPUs with 40 GiB free; agent box-1 keeps room for it as tasks there end')?.full)
      .toBe('等待资源：2 块空闲 40 GiB 的 GPU；Agent box-1 正为它预留，待其上的任务结束')
    expect(inLocale('zh', 'waiting for priority: tasks ahead of it in the queue go first')?.short).toBe('等待优先级')
  })

  it('shows unknown wording as the server wrote it, and nothing for no reason', () => {
    expect(inLocale('zh', 'some new reason')).toEqual({ short: 'some new reason', full: 'some new reason' })
    expect(inLocale('en', null)).toBeNull()
    expect(inLocale('en', '  ')).toBeNull()
  })
})

describe('translateReason (how a task ended, or why it runs late)', () => {
  const cases: [string, string, string][] = [
    ['exit code 3', 'Exit code 3', '退出码 3'],
    ['exit code 137 (killed by SIGKILL)', 'Exit code 137 (killed by SIGKILL)', '退出码 137（被 SIGKILL 终止）'],
    ['killed by SIGTERM', 'Killed by SIGTERM', '被 SIGTERM 终止'],
    ['canceled by a user', 'Canceled by a user', '已被用户取消'],
    ['dependency 12 failed', 'Dependency 12 failed', '依赖任务 12 失败'],
    ['dependency 12 was canceled', 'Dependency 12 was canceled', '依赖任务 12 已取消'],
    ['time limit of 60s reached', 'Time limit of 60s reached', '已达到时间限制 60 秒'],
    ['work_dir /data/x does not exist on gpu-box', 'Working directory /data/x does not exist on gpu-box', '工作目录 /data/x 在 gpu-box 上不存在'],
    ['sub-agent died', 'The sub-agent died', '子代理已终止'],
    ['sub-agent exited unexpectedly (exit code 1)', 'The sub-agent exited unexpectedly (Exit code 1)', '子代理意外退出（退出码 1）'],
    ['agent a1b2 did not start it: no free GPU', 'Agent a1b2 did not start it: no free GPU', '代理 a1b2 未启动该任务：no free GPU'],
    ["could not store the task's output on the server: disk full", "Could not store the task's output on the server: disk full", '无法在服务器上保存任务输出：disk full'],
    ['Slurm: PENDING (Resources)', 'Slurm: PENDING (Resources)', 'Slurm：PENDING（Resources）'],
    ['Slurm: RUNNING', 'Slurm: RUNNING', 'Slurm：RUNNING'],
    ['waiting for dependencies 3, 4', 'Waiting for dependencies 3, 4', '等待依赖任务 3, 4'],
    ['something new', 'something new', 'something new'],
  ]

  it.each(cases)('%s', (reason, en, zh) => {
    i18n.global.locale.value = 'en'
    expect(translateReason(reason, t)).toBe(en)
    i18n.global.locale.value = 'zh'
    const inZh = translateReason(reason, t)
    if (reason.startsWith('waiting')) expect(inZh).toContain('3, 4')
    else expect(inZh).toBe(zh)
  })

  it("a waiting task's other reasons are translated in the list too", () => {
    expect(inLocale('zh', 'agent a1 did not start it: busy')).toEqual({ short: '代理 a1 未启动该任务：busy', full: '代理 a1 未启动该任务：busy' })
    expect(inLocale('en', 'Slurm: PENDING (Priority)')?.full).toBe('Slurm: PENDING (Priority)')
  })

  it('knows when the reason already names the exit code', () => {
    expect(reasonNamesExit('exit code 3')).toBe(true)
    expect(reasonNamesExit('exit code 137 (killed by SIGKILL)')).toBe(true)
    expect(reasonNamesExit('killed by SIGTERM')).toBe(true)
    expect(reasonNamesExit('time limit of 60s reached')).toBe(false)
    expect(reasonNamesExit(null)).toBe(false)
    expect(translateReason(null, t)).toBeNull()
  })
})
