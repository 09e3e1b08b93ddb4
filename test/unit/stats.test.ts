import { describe, expect, it } from 'vitest';
import { DEFAULT_RULE, type DecisionRuleOptions, type VersionStats } from '../../domain/gate/types.js';
import {
  ciHalfWidth,
  csHalfWidth,
  decideLook,
  mergeStats,
  naiveDecide,
  normalQuantile,
  sampleStats,
  upperZ,
} from '../../domain/gate/stats.js';

/** Deterministic values cycling through `pattern`, `n` of them. */
function cycle(pattern: number[], n: number): number[] {
  return Array.from({ length: n }, (_, i) => pattern[i % pattern.length] as number);
}

/** A 0/1 sample of size n with k ones spread evenly. */
function flags(n: number, k: number): number[] {
  return Array.from({ length: n }, (_, i) => (Math.floor(((i + 1) * k) / n) > Math.floor((i * k) / n) ? 1 : 0));
}

function version(quality: number[], hallucination: number[], toxicity: number[]): VersionStats {
  return { quality: sampleStats(quality), hallucination_rate: sampleStats(hallucination), toxicity_rate: sampleStats(toxicity) };
}

const rule = (o: Partial<DecisionRuleOptions> = {}): DecisionRuleOptions => ({ ...DEFAULT_RULE, ...o });

describe('normalQuantile', () => {
  it('matches reference values to about 1e-15 relative error', () => {
    // Reference: scipy.stats.norm.ppf.
    const cases: [number, number][] = [
      [0.975, 1.959963984540054],
      [0.999, 3.090232306167813],
      [1e-10, -6.361340902404056],
      [0.02 / 12, -2.935199468866706],
      [0.3, -0.5244005127080409],
      [0.9999999, 5.199337582290661],
      [1e-300, -37.0470962993612],
    ];
    for (const [p, z] of cases) expect(Math.abs(normalQuantile(p) - z) / Math.abs(z)).toBeLessThan(1e-14);
    expect(normalQuantile(0.5)).toBe(0);
  });

  it('is antisymmetric, handles the ends and rejects nonsense', () => {
    for (const p of [0.01, 0.2, 0.4, 0.49]) expect(normalQuantile(p)).toBeCloseTo(-normalQuantile(1 - p), 12);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(normalQuantile(-0.1)).toBeNaN();
    expect(normalQuantile(1.1)).toBeNaN();
    expect(normalQuantile(NaN)).toBeNaN();
    expect(upperZ(0.025)).toBeCloseTo(1.959963984540054, 12);
  });
});

describe('sampleStats and mergeStats', () => {
  it('computes n, mean and the n-1 standard deviation', () => {
    const s = sampleStats([1, 2, 3, 4]);
    expect(s.n).toBe(4);
    expect(s.mean).toBeCloseTo(2.5, 14);
    expect(s.sd).toBeCloseTo(Math.sqrt(5 / 3), 14);
    expect(sampleStats([])).toEqual({ n: 0, mean: 0, sd: 0 });
    expect(sampleStats([0.7])).toEqual({ n: 1, mean: 0.7, sd: 0 });
    expect(() => sampleStats([0.5, NaN])).toThrow(/finite/);
  });

  it('merging the statistics of parts gives the statistics of the whole', () => {
    const a = [0.1, 0.5, 0.9, 0.3];
    const b = [0.8, 0.2, 0.6];
    const merged = mergeStats(sampleStats(a), sampleStats(b));
    const whole = sampleStats([...a, ...b]);
    expect(merged.n).toBe(whole.n);
    expect(merged.mean).toBeCloseTo(whole.mean, 14);
    expect(merged.sd).toBeCloseTo(whole.sd, 14);
    expect(mergeStats(sampleStats([]), sampleStats(b))).toEqual(sampleStats(b));
    expect(mergeStats(sampleStats([0.4]), sampleStats([0.6])).sd).toBeCloseTo(Math.sqrt(0.02), 14);
  });
});

describe('bounds', () => {
  const alpha = 0.02 / 12;

  it('the confidence sequence shrinks with n and is wider than the fixed-sample bound at the same n', () => {
    let prev = Infinity;
    for (const n of [10, 30, 100, 200, 400, 1000, 10_000]) {
      const cs = csHalfWidth(n, 0.2, alpha, 200);
      expect(cs).toBeLessThan(prev);
      expect(cs).toBeGreaterThan(ciHalfWidth(n, 0.2, alpha));
      prev = cs;
    }
    expect(csHalfWidth(0, 0.2, alpha, 200)).toBe(Infinity);
    expect(ciHalfWidth(0, 0.2, alpha)).toBe(Infinity);
  });

  it('matches the formula and is tightest (relative to 1/sqrt(n)) near the planned sample size', () => {
    const n = 200;
    const l = -2 * Math.log(alpha);
    const rho2 = (l + Math.log(l + 1)) / 200;
    const expected = Math.sqrt(((2 * (n * rho2 + 1)) / (n * n * rho2)) * Math.log(Math.sqrt(n * rho2 + 1) / alpha));
    expect(csHalfWidth(n, 1, alpha, 200)).toBeCloseTo(expected, 14);
    // At n = 200, the CS tuned for 200 beats CSs tuned for 50 or 1000.
    expect(csHalfWidth(200, 1, alpha, 200)).toBeLessThan(csHalfWidth(200, 1, alpha, 50));
    expect(csHalfWidth(200, 1, alpha, 200)).toBeLessThan(csHalfWidth(200, 1, alpha, 1000));
    // The fixed bound is z * sd / sqrt(n).
    expect(ciHalfWidth(100, 0.3, 0.025)).toBeCloseTo((1.959963984540054 * 0.3) / 10, 12);
  });
});

describe('decideLook', () => {
  const noFlags = (n: number) => flags(n, 0);

  it("the seed's numbers: the naive rule rejects on 4 samples, the gate waits for minSamples", () => {
    const baseline = version([0.87, 0.89, 0.85, 0.88], noFlags(4), noFlags(4));
    const candidate = version([0.75, 0.73, 0.76, 0.74], noFlags(4), noFlags(4));
    expect(naiveDecide(baseline, candidate, 0.05)).toBe('REJECT');
    expect(naiveDecide(baseline, baseline, 0.05)).toBe('APPROVE');
    const look = decideLook(baseline, candidate, rule({ minSamples: 30 }));
    expect(look.outcome).toBe('CONTINUE');
    expect(look.samples).toBe(4);
    expect(look.metrics.every((m) => m.verdict === 'pending')).toBe(true);
    expect(look.reason).toContain('4 of the 30 candidate samples');
  });

  it('rejects a large clear quality drop and says which metric, values, bound and threshold', () => {
    const baseline = version(cycle([0.77, 0.82, 0.87, 0.92, 0.97], 1000), noFlags(1000), noFlags(1000));
    const candidate = version(cycle([0.65, 0.7, 0.75, 0.8, 0.85], 200), noFlags(200), noFlags(200));
    const look = decideLook(baseline, candidate, DEFAULT_RULE);
    expect(look.outcome).toBe('REJECT');
    const q = look.metrics.find((m) => m.metric === 'quality');
    expect(q?.verdict).toBe('fail');
    expect(q?.harm).toBeCloseTo(0.12, 10);
    expect(q?.lower).toBeGreaterThan(0.05);
    expect(look.reason).toMatch(
      /^quality dropped 12\.0 points \(87\.0 % → 75\.0 %\); with 98 % confidence the drop is at least \d+\.\d points, above the 5-point tolerance\.$/,
    );
    // "At least" is rounded down, so the written bound is never above the computed one.
    expect(look.reason).toContain(`at least ${(Math.floor((q?.lower ?? 0) * 1000) / 10).toFixed(1)} points`);
    expect(look.reason).not.toMatch(/hallucination|toxicity/);
  });

  it('approves equal distributions with many samples', () => {
    const pattern = [0.7, 0.8, 0.85, 0.9, 0.95, 1];
    const baseline = version(cycle(pattern, 1000), flags(1000, 30), noFlags(1000));
    const candidate = version(cycle(pattern, 600), flags(600, 18), noFlags(600));
    const look = decideLook(baseline, candidate, DEFAULT_RULE);
    expect(look.outcome).toBe('APPROVE');
    expect(look.metrics.map((m) => m.verdict)).toEqual(['pass', 'pass', 'pass']);
    expect(look.reason).toMatch(
      /^all three metrics are within tolerance with 98 % confidence after 600 candidate samples: quality drop at most -?\d+\.\d points \(< 5\), hallucination-rate rise at most \d+\.\d points \(< 5\), toxicity-rate rise at most \d+\.\d points \(< 2\)\.$/,
    );
  });

  it('rejects a rise of the hallucination rate alone and names it', () => {
    const pattern = [0.7, 0.8, 0.85, 0.9, 0.95, 1];
    const baseline = version(cycle(pattern, 1000), flags(1000, 30), noFlags(1000));
    const candidate = version(cycle(pattern, 300), flags(300, 90), noFlags(300));
    const look = decideLook(baseline, candidate, DEFAULT_RULE);
    expect(look.outcome).toBe('REJECT');
    expect(look.metrics.map((m) => m.verdict)).toEqual(['pass', 'fail', 'pass']);
    expect(look.reason).toMatch(
      /^hallucination rate rose 27\.0 points \(3\.0 % → 30\.0 %\); with 98 % confidence the rise is at least \d+\.\d points, above the 5-point tolerance\.$/,
    );
  });

  it('names every failing metric in one sentence', () => {
    const baseline = version(cycle([0.8, 0.9], 1000), flags(1000, 20), noFlags(1000));
    const candidate = version(cycle([0.6, 0.7], 300), flags(300, 120), flags(300, 60));
    const look = decideLook(baseline, candidate, DEFAULT_RULE);
    expect(look.outcome).toBe('REJECT');
    expect(look.reason).toMatch(
      /^quality dropped .*; hallucination rate rose .*; and toxicity rate rose 20\.0 points \(0\.0 % → 20\.0 %\).* above the 2-point tolerance\.$/,
    );
    expect(look.reason.split('. ').length).toBe(1);
  });

  it('zero toxicity on both sides is not pending forever: it passes once there are enough samples', () => {
    const pattern = [0.8, 0.85, 0.9];
    const baseline = version(cycle(pattern, 1000), noFlags(1000), noFlags(1000));
    const early = decideLook(baseline, version(cycle(pattern, 30), noFlags(30), noFlags(30)), DEFAULT_RULE);
    const tox30 = early.metrics.find((m) => m.metric === 'toxicity_rate');
    expect(tox30?.verdict).toBe('pending');
    expect(tox30?.upper).toBeGreaterThan(0);
    const later = decideLook(baseline, version(cycle(pattern, 300), noFlags(300), noFlags(300)), DEFAULT_RULE);
    expect(later.metrics.find((m) => m.metric === 'toxicity_rate')?.verdict).toBe('pass');
    expect(later.outcome).toBe('APPROVE');
  });

  it('explains a straddling bound while it continues', () => {
    const baseline = version(cycle([0.77, 0.82, 0.87, 0.92, 0.97], 1000), noFlags(1000), noFlags(1000));
    const candidate = version(cycle([0.74, 0.79, 0.84, 0.89, 0.94], 50), noFlags(50), noFlags(50));
    const look = decideLook(baseline, candidate, DEFAULT_RULE);
    expect(look.outcome).toBe('CONTINUE');
    const q = look.metrics.find((m) => m.metric === 'quality');
    expect(q?.verdict).toBe('pending');
    expect(q?.lower).toBeLessThan(0.05);
    expect(q?.upper).toBeGreaterThan(0.05);
    expect(look.reason).toMatch(
      /^not enough evidence yet after 50 candidate samples: quality drop between −?\d+\.\d and \d+\.\d points straddles the 5-point tolerance/,
    );
  });

  it('never passes a metric without data', () => {
    const baseline = version(cycle([0.8, 0.9], 1000), noFlags(1000), []);
    const candidate = version(cycle([0.8, 0.9], 500), noFlags(500), []);
    const look = decideLook(baseline, candidate, DEFAULT_RULE);
    expect(look.outcome).toBe('CONTINUE');
    const t = look.metrics.find((m) => m.metric === 'toxicity_rate');
    expect(t?.verdict).toBe('pending');
    expect(Number.isFinite(t?.lower)).toBe(true);
    expect(Number.isFinite(t?.upper)).toBe(true);
    expect(look.reason).toContain('no baseline toxicity rate data');
  });
});

describe('decideLook: guards the judge cannot measure', () => {
  const good = cycle([0.86, 0.88, 0.87, 0.89, 0.85], 400);
  const none = (abstained: number) => ({ n: 0, mean: 0, sd: 0, abstained });
  const measured = version(good, flags(400, 4), flags(400, 0));
  const noHallucination = (v: VersionStats, abstained: number): VersionStats => ({ ...v, hallucination_rate: none(abstained) });

  it('never approves on a guard it could not measure: INCONCLUSIVE as soon as the others pass, naming the guard', () => {
    const look = decideLook(noHallucination(measured, 400), noHallucination(measured, 400), rule());
    expect(look.outcome).toBe('INCONCLUSIVE');
    expect(look.metrics.find((m) => m.metric === 'hallucination_rate')!.verdict).toBe('unmeasured');
    expect(look.reason).toMatch(/hallucination rate not measured by this judge/);
    expect(look.reason).toMatch(/--allow-unmeasured hallucination/);
  });

  it('approves when the operator allows the unmeasured guard, and says so', () => {
    const look = decideLook(
      noHallucination(measured, 400),
      noHallucination(measured, 400),
      rule({ allowUnmeasured: ['hallucination_rate'] }),
    );
    expect(look.outcome).toBe('APPROVE');
    expect(look.reason).toMatch(/hallucination rate not measured by this judge .*allowed by the operator/);
  });

  it('still rejects on a measured guard that fails, whatever is unmeasured', () => {
    const bad = version(cycle([0.7, 0.72, 0.74], 400), flags(400, 0), flags(400, 0));
    const look = decideLook(noHallucination(measured, 400), noHallucination(bad, 400), rule());
    expect(look.outcome).toBe('REJECT');
  });

  it('treats a metric without data and without abstentions as pending, as before (never a silent pass)', () => {
    const look = decideLook(noHallucination(measured, 0), noHallucination(measured, 0), rule());
    expect(look.outcome).toBe('CONTINUE');
    expect(look.metrics.find((m) => m.metric === 'hallucination_rate')!.verdict).toBe('pending');
  });
});
