import { describe, expect, it } from 'vitest';
import { auroc, binaryReport, confusion } from '../../domain/judge/eval-metrics.js';

describe('auroc', () => {
  it('is 1 for a perfect ranking and 0 for a reversed one', () => {
    expect(auroc([0.1, 0.2, 0.8, 0.9], [false, false, true, true])).toBe(1);
    expect(auroc([0.9, 0.8, 0.2, 0.1], [false, false, true, true])).toBe(0);
  });

  it('matches a hand-computed value', () => {
    // Positives 0.8, 0.4; negatives 0.6, 0.2, 0.1. Pairs won: (0.8 beats all 3) + (0.4 beats 0.2, 0.1) = 5 of 6.
    expect(auroc([0.8, 0.4, 0.6, 0.2, 0.1], [true, true, false, false, false])).toBeCloseTo(5 / 6, 12);
  });

  it('counts ties between classes as one half (average ranks)', () => {
    expect(auroc([0.5, 0.5, 0.5, 0.5], [true, false, true, false])).toBe(0.5);
    // Positive 0.5 ties negative 0.5 (1/2) and beats negative 0.1 (1); positive 0.9 beats both (2). Total 3.5 of 4.
    expect(auroc([0.5, 0.9, 0.5, 0.1], [true, true, false, false])).toBeCloseTo(3.5 / 4, 12);
    // Ties within one class do not matter.
    expect(auroc([0.7, 0.7, 0.3, 0.3], [true, true, false, false])).toBe(1);
  });

  it('does not depend on input order and equals the brute-force pair count', () => {
    const scores = [0.3, 0.1, 0.7, 0.7, 0.2, 0.9, 0.3, 0.5, 0.5, 0.0];
    const labels = [true, false, true, false, false, true, true, false, true, false];
    let wins = 0;
    let pairs = 0;
    for (let i = 0; i < scores.length; i++) {
      for (let j = 0; j < scores.length; j++) {
        if (!labels[i] || labels[j]) continue;
        pairs++;
        const a = scores[i] as number;
        const b = scores[j] as number;
        wins += a > b ? 1 : a === b ? 0.5 : 0;
      }
    }
    const expected = wins / pairs;
    expect(auroc(scores, labels)).toBeCloseTo(expected, 12);
    const order = [9, 3, 1, 7, 0, 5, 2, 8, 4, 6];
    expect(
      auroc(
        order.map((i) => scores[i] as number),
        order.map((i) => labels[i] as boolean),
      ),
    ).toBeCloseTo(expected, 12);
  });

  it('is NaN when a class is missing and rejects bad input', () => {
    expect(auroc([0.1, 0.2], [true, true])).toBeNaN();
    expect(auroc([], [])).toBeNaN();
    expect(() => auroc([0.1], [true, false])).toThrow();
    expect(() => auroc([NaN, 0.2], [true, false])).toThrow();
  });
});

describe('confusion and binaryReport', () => {
  const scores = [0.9, 0.6, 0.5, 0.4, 0.2, 0.7];
  const labels = [true, true, false, true, false, false];

  it('counts at threshold 0.5 with >= predicting positive', () => {
    expect(confusion(scores, labels, 0.5)).toEqual({ tp: 2, fp: 2, tn: 1, fn: 1 });
  });

  it('derives accuracy, precision, recall and F1', () => {
    const r = binaryReport(scores, labels);
    expect(r).toMatchObject({ n: 6, positives: 3, negatives: 3, tp: 2, fp: 2, tn: 1, fn: 1, threshold: 0.5 });
    expect(r.accuracy).toBeCloseTo(3 / 6, 12);
    expect(r.precision).toBeCloseTo(2 / 4, 12);
    expect(r.recall).toBeCloseTo(2 / 3, 12);
    expect(r.f1).toBeCloseTo((2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3), 12);
    // Pairs: 0.9 beats 3, 0.6 beats 0.5 and 0.2, 0.4 beats 0.2: 6 of 9.
    expect(r.auroc).toBeCloseTo(6 / 9, 12);
  });

  it('reports undefined precision as NaN and F1 as 0 when nothing is predicted positive', () => {
    const r = binaryReport([0.1, 0.2, 0.3], [true, false, true]);
    expect(r.precision).toBeNaN();
    expect(r.recall).toBe(0);
    expect(r.f1).toBe(0);
  });
});
