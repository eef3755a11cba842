import { describe, expect, it } from 'vitest'
import {
  combinationCount,
  combinations,
  extractPlaceholders,
  fillPlaceholders,
  planSweep,
  splitValues,
  sweepName,
} from '@/utils/sweep'

describe('extractPlaceholders', () => {
  it('finds each name once, in order, across texts, spaces inside the braces allowed', () => {
    const script = 'python train.py --lr {{lr}} --bs {{ bs }} --again {{lr}}'
    expect(extractPlaceholders('run {{seed}}', script)).toEqual(['seed', 'lr', 'bs'])
  })

  it('ignores what is not a placeholder', () => {
    expect(extractPlaceholders("docker inspect -f '{{.State}}' {{1x}} { {a} } ${HOME}")).toEqual([])
  })
})

describe('splitValues', () => {
  it('splits on commas (also the Chinese comma), trims, drops blanks and repeats', () => {
    expect(splitValues(' 1e-3, 3e-4，1e-3 ,, ')).toEqual(['1e-3', '3e-4'])
    expect(splitValues('')).toEqual([])
  })
})

describe('combinations', () => {
  it('is the Cartesian product, the last parameter varying fastest', () => {
    const params = { lr: ['1e-3', '1e-4'], bs: ['32', '64'] }
    expect(combinationCount(params)).toBe(4)
    expect(combinations(params)).toEqual([
      { lr: '1e-3', bs: '32' },
      { lr: '1e-3', bs: '64' },
      { lr: '1e-4', bs: '32' },
      { lr: '1e-4', bs: '64' },
    ])
    expect(combinations(params, 2)).toHaveLength(2)
  })

  it('counts without building a large product', () => {
    expect(combinationCount({ a: Array(11).fill('x'), b: Array(10).fill('y'), c: Array(10).fill('z') })).toBe(1100)
  })
})

describe('naming', () => {
  it('appends the placeholders to a name that has none', () => {
    expect(sweepName('train', ['lr', 'bs'])).toBe('train [lr={{lr}}, bs={{bs}}]')
    expect(sweepName('train {{lr}}', ['lr', 'bs'])).toBe('train {{lr}}')
    expect(sweepName('train', [])).toBe('train')
  })

  it('fills in the values', () => {
    expect(fillPlaceholders('train [lr={{lr}}, bs={{ bs }}]', { lr: '1e-3', bs: '32' })).toBe('train [lr=1e-3, bs=32]')
  })
})

describe('planSweep', () => {
  it('plans 2×2 tasks with their names', () => {
    const plan = planSweep('train ', 'python t.py --lr {{lr}} --bs {{bs}}', { lr: '1e-3, 1e-4', bs: '32,64' })
    expect(plan.names).toEqual(['lr', 'bs'])
    expect(plan.name).toBe('train [lr={{lr}}, bs={{bs}}]')
    expect(plan.params).toEqual({ lr: ['1e-3', '1e-4'], bs: ['32', '64'] })
    expect(plan.count).toBe(4)
    expect(plan.preview).toEqual([
      'train [lr=1e-3, bs=32]',
      'train [lr=1e-3, bs=64]',
      'train [lr=1e-4, bs=32]',
      'train [lr=1e-4, bs=64]',
    ])
  })

  it('makes nothing while a placeholder has no value, and shows only the first names', () => {
    expect(planSweep('t', 'echo {{a}} {{b}}', { a: '1' }).count).toBe(0)
    const big = planSweep('t', 'echo {{a}}', { a: Array.from({ length: 1001 }, (_, i) => i).join(',') })
    expect(big.count).toBe(1001)
    expect(big.preview).toHaveLength(5)
  })

  it('is empty for a script without placeholders', () => {
    expect(planSweep('t', 'echo hi', {})).toMatchObject({ names: [], count: 0, preview: [] })
  })
})
