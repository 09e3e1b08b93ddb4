import { describe, expect, it } from 'vitest';
import { bestThreshold, expectedCalibrationError, lengthMatched, reliabilityTable } from '../../domain/judge/eval-metrics.js';
import { evalOnlySplitOf, splitOf } from '../../scripts/eval/datasets.js';
import { formatTable } from '../../scripts/eval/figures.js';
import { trueDetailPairs } from '../../scripts/eval/hallucination-figures.js';

describe('evaluation helpers', () => {
  it('length-matched pairs keep only pairs within ±20 % of each other', () => {
    const lengths = [10, 12, 10, 13, 100, 50];
    const pairs = [
      [0, 1],
      [2, 3],
      [4, 5],
    ] as const;
    expect(lengthMatched(pairs, (i) => lengths[i] as number, 0.2)).toEqual([[0, 1]]);
    expect(lengthMatched(pairs, (i) => lengths[i] as number, 0.25)).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  it('reliability table: bands, mean score, observed rate, calibration error', () => {
    const scores = [0.05, 0.1, 0.15, 0.9, 0.95, 1];
    const labels = [false, false, true, true, true, true];
    const t = reliabilityTable(scores, labels, 5);
    expect(t).toHaveLength(5);
    expect(t[0]).toMatchObject({ n: 3 });
    expect(t[0]?.observedRate).toBeCloseTo(1 / 3, 10);
    expect(t[0]?.meanScore).toBeCloseTo(0.1, 10);
    expect(t[4]).toMatchObject({ n: 3, observedRate: 1 });
    expect(Number.isNaN(t[2]?.observedRate)).toBe(true);
    expect(expectedCalibrationError(t)).toBeCloseTo(0.5 * Math.abs(0.1 - 1 / 3) + 0.5 * Math.abs(0.95 - 1), 10);
  });

  it('best threshold maximises balanced accuracy and is NaN with one class', () => {
    expect(bestThreshold([0.1, 0.2, 0.3, 0.4], [false, false, true, true])).toBe(0.3);
    expect(Number.isNaN(bestThreshold([0.1, 0.2], [true, true]))).toBe(true);
  });

  it('splits are deterministic and roughly 60/20/20', () => {
    const counts = { train: 0, tune: 0, test: 0 };
    for (let i = 0; i < 5000; i++) counts[splitOf('x', String(i))]++;
    expect(splitOf('x', '42')).toBe(splitOf('x', '42'));
    expect(counts.train / 5000).toBeGreaterThan(0.55);
    expect(counts.train / 5000).toBeLessThan(0.65);
    expect(counts.test / 5000).toBeGreaterThan(0.15);
    const halves = { tune: 0, test: 0 };
    for (let i = 0; i < 1000; i++) halves[evalOnlySplitOf('h', String(i))]++;
    expect(halves.tune).toBeGreaterThan(400);
    expect(halves.test).toBeGreaterThan(400);
  });

  it('true-detail pairs move one sentence from the passage into the correct answer', () => {
    const [p] = trueDetailPairs([
      {
        id: '1',
        knowledge: 'The Oberoi Group is a hotel company with its head office in Delhi. It was founded in 1934 by Mohan Singh Oberoi.',
        question: 'Where is the head office of the Oberoi Group?',
        right: 'Delhi',
        hallucinated: 'Mumbai',
      },
    ]);
    expect(p?.negative.context).toBe('The Oberoi Group is a hotel company with its head office in Delhi.');
    expect(p?.negative.response).toBe('Delhi. It was founded in 1934 by Mohan Singh Oberoi.');
    expect(p?.negative.positive).toBe(false);
    expect(p?.positive).toMatchObject({ response: 'Mumbai', positive: true, context: p?.negative.context });
  });

  it('formats one aligned table', () => {
    const text = formatTable([
      { section: 's', dataset: 'd', split: 'test', check: 'toxicity', n: 3, metric: 'AUROC', value: 0.91234, baseline: 0.5 },
    ]);
    const lines = text.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(/0\.912\s+0\.500/);
  });
});
