/**
 * Adversarial score data against the deploy gate's decision (domain/gate/stats.ts): tiny and huge
 * samples, constant and bimodal scores, rare events, bursts, thousands of looks, scores exactly
 * at the tolerance, malformed statistics. Each test says whether it pins behaviour that already
 * held ("pins") or failed before the fix it guards ("fixed").
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../common/random.js';
import { decideLook, emptyVersionStats, mergeStats, mergeVersionStats, sampleStats } from '../../domain/gate/stats.js';
import { DEFAULT_RULE, type DecisionRuleOptions, type SampleStats, type VersionStats } from '../../domain/gate/types.js';
import { runGateSimulation } from '../../scripts/gate-sim/simulation.js';

const rule = (o: Partial<DecisionRuleOptions> = {}): DecisionRuleOptions => ({ ...DEFAULT_RULE, ...o });
/** Only quality decides: the rate guards have a tolerance no rate can exceed. */
const qualityOnly = rule({ tolerances: { qualityDrop: 0.05, hallucinationRateIncrease: 1, toxicityRateIncrease: 1 } });

const stat = (n: number, mean: number, sd: number): SampleStats => ({ n, mean, sd });
const zeroRate = (n: number) => stat(n, 0, 0);
const version = (quality: SampleStats, h: SampleStats = zeroRate(quality.n), t: SampleStats = zeroRate(quality.n)): VersionStats => ({
  quality,
  hallucination_rate: h,
  toxicity_rate: t,
});
const fromScores = (q: number[], h = q.map(() => 0), t = q.map(() => 0)): VersionStats => ({
  quality: sampleStats(q),
  hallucination_rate: sampleStats(h),
  toxicity_rate: sampleStats(t),
});
const cycle = (pattern: number[], n: number) => Array.from({ length: n }, (_, i) => pattern[i % pattern.length] as number);

type Draw = (r: () => number) => { q: number; h: number; t: number };

/** Sequential runs of decideLook on synthetic streams (looks of `look` up to `max`); shares of each outcome. */
function simulate(o: {
  runs: number;
  seed: number;
  base: Draw;
  cand: Draw;
  baseN: number;
  look: number;
  max: number;
  rule: DecisionRuleOptions;
}) {
  const r = mulberry32(o.seed);
  const count = { approve: 0, reject: 0, inconclusive: 0 };
  const stats = (xs: ReturnType<Draw>[]) =>
    fromScores(
      xs.map((x) => x.q),
      xs.map((x) => x.h),
      xs.map((x) => x.t),
    );
  for (let i = 0; i < o.runs; i++) {
    const baseline = stats(Array.from({ length: o.baseN }, () => o.base(r)));
    let cand = emptyVersionStats();
    let out: keyof typeof count = 'inconclusive';
    for (let n = 0; n < o.max; n += o.look) {
      cand = mergeVersionStats(cand, stats(Array.from({ length: o.look }, () => o.cand(r))));
      const look = decideLook(baseline, cand, o.rule);
      if (look.outcome === 'APPROVE' || look.outcome === 'REJECT') {
        out = look.outcome === 'APPROVE' ? 'approve' : 'reject';
        break;
      }
    }
    count[out]++;
  }
  return { approve: count.approve / o.runs, reject: count.reject / o.runs, inconclusive: count.inconclusive / o.runs };
}

describe('a baseline of very few interactions decides nothing', () => {
  // Fixed: a baseline of one score has sd 0, and the fixed z bound on it was as narrow as on a
  // thousand scores: an unchanged candidate was rejected 19 % of the time (baseline of 1), 3 % (of 2).
  it.each([1, 2, 5])('baseline of %i interaction(s): no REJECT or APPROVE, and the look says why', (n) => {
    const baseline = fromScores(cycle([0.9], n));
    const worse = decideLook(baseline, fromScores(cycle([0.6, 0.7], 600)), DEFAULT_RULE);
    const same = decideLook(baseline, fromScores(cycle([0.85, 0.95], 600)), DEFAULT_RULE);
    for (const look of [worse, same]) {
      expect(look.outcome).toBe('CONTINUE');
      expect(look.reason).toContain(`the baseline has ${n} scored quality interactions, fewer than the 30 needed`);
    }
  });

  it('an unchanged candidate against baselines of 1 to 5 scores is never rejected (simulated)', () => {
    const normalish = (r: () => number) => (r() + r() + r() - 1.5) * 0.2;
    const good: Draw = (r) => ({ q: Math.min(1, Math.max(0, 0.8 + normalish(r))), h: r() < 0.05 ? 1 : 0, t: 0 });
    for (const baseN of [1, 2, 5]) {
      const s = simulate({ runs: 150, seed: 7 + baseN, base: good, cand: good, baseN, look: 10, max: 300, rule: DEFAULT_RULE });
      expect(s.reject).toBe(0);
      expect(s.approve).toBe(0);
    }
  });

  it('a huge baseline (10 million) still decides both ways (pins)', () => {
    const baseline = version(stat(10_000_000, 0.8, 0.2), stat(10_000_000, 0.03, 0.17), stat(10_000_000, 0, 0));
    expect(decideLook(baseline, version(stat(600, 0.8, 0.2), stat(600, 0.03, 0.17)), DEFAULT_RULE).outcome).toBe('APPROVE');
    expect(decideLook(baseline, version(stat(600, 0.6, 0.2), stat(600, 0.03, 0.17)), DEFAULT_RULE).outcome).toBe('REJECT');
  });
});

describe('a check measured on few interactions of one side decides nothing on them', () => {
  // Fixed: only the candidate's quality count was held to minSamples; a hallucination rate scored
  // on 5 of 600 candidate interactions (the judge abstained on the rest) rejected the candidate.
  it('5 scored hallucination samples of 600: pending, named, no REJECT', () => {
    const baseline = version(stat(1000, 0.8, 0.2), stat(1000, 0.03, 0.17));
    const candidate = version(stat(600, 0.8, 0.2), { ...stat(5, 1, 0), abstained: 595 });
    const look = decideLook(baseline, candidate, DEFAULT_RULE);
    expect(look.outcome).toBe('CONTINUE');
    expect(look.metrics.find((m) => m.metric === 'hallucination_rate')?.verdict).toBe('pending');
    expect(look.reason).toContain('5 of the 30 candidate hallucination rate samples needed before a verdict on it');
  });

  it('a gate recorded before the rule (legacy) decides its looks as it did, so its history replays', () => {
    const baseline = version(stat(1000, 0.8, 0.2), stat(1000, 0.03, 0.17));
    const candidate = version(stat(600, 0.8, 0.2), { ...stat(5, 1, 0), abstained: 595 });
    expect(decideLook(baseline, candidate, { ...DEFAULT_RULE, legacy: true }).outcome).toBe('REJECT');
    // And the quality sd floor of 0.01: 40 identical scores approved.
    const same = version(stat(40, 0.8, 0));
    expect(decideLook(version(stat(1000, 0.8, 0.2)), same, { ...qualityOnly, legacy: true }).outcome).toBe('APPROVE');
    expect(decideLook(version(stat(1000, 0.8, 0.2)), same, qualityOnly).outcome).not.toBe('APPROVE');
  });

  it('the same on the baseline side: 4 scored baseline toxicity interactions decide nothing', () => {
    const baseline = version(stat(1000, 0.8, 0.2), stat(1000, 0.03, 0.17), { ...stat(4, 0, 0), abstained: 996 });
    const look = decideLook(baseline, version(stat(600, 0.8, 0.2), stat(600, 0.03, 0.17), stat(600, 0.5, 0.5)), DEFAULT_RULE);
    expect(look.outcome).toBe('CONTINUE');
    expect(look.reason).toContain('the baseline has 4 scored toxicity rate interactions');
  });

  it('a guard the judge abstained on entirely, on one side only, never approves (pins)', () => {
    const measured = version(stat(1000, 0.8, 0.2), stat(1000, 0.03, 0.17));
    const blind = { ...measured, hallucination_rate: { ...stat(0, 0, 0), abstained: 1000 } };
    const cand = version(stat(600, 0.8, 0.1), stat(600, 0.03, 0.17));
    expect(decideLook(blind, cand, DEFAULT_RULE).outcome).toBe('INCONCLUSIVE');
    expect(decideLook(measured, { ...cand, hallucination_rate: { ...stat(0, 0, 0), abstained: 600 } }, DEFAULT_RULE).outcome).toBe(
      'INCONCLUSIVE',
    );
  });
});

describe('constant scores (sd 0) do not claim certainty', () => {
  // Fixed: a constant sample's sd was floored at 0.01, so 40 identical candidate scores "proved"
  // a quality drop below 1 point and approved.
  it('40 identical candidate scores do not approve; 600 do (not stuck either)', () => {
    const baseline = fromScores(cycle([0.9], 1000));
    expect(decideLook(baseline, fromScores(cycle([0.9], 40)), qualityOnly).outcome).toBe('CONTINUE');
    expect(decideLook(baseline, fromScores(cycle([0.9], 600)), qualityOnly).outcome).toBe('APPROVE');
    expect(decideLook(baseline, fromScores(cycle([0.9], 600)), DEFAULT_RULE).outcome).toBe('APPROVE');
  });

  it('a constant baseline against a candidate with 7 % zero scores (true drop 6.3 points): false approve ≤ 3 % (was 10.5 %)', () => {
    const s = simulate({
      runs: 1000,
      seed: 10,
      base: () => ({ q: 0.9, h: 0, t: 0 }),
      cand: (r) => ({ q: r() < 0.07 ? 0 : 0.9, h: 0, t: 0 }),
      baseN: 1000,
      look: 10,
      max: 300,
      rule: qualityOnly,
    });
    // Measured 1.3 % over 2,000 runs (README); 10.5 % before.
    expect(s.approve).toBeLessThanOrEqual(0.03);
  }, 20_000);
});

describe('heavy-tailed and bimodal scores', () => {
  it('bimodal 0/1 quality 7 points worse is never approved; unchanged is never rejected (pins)', () => {
    const bern =
      (p: number): Draw =>
      (r) => ({ q: r() < p ? 1 : 0, h: 0, t: 0 });
    const worse = simulate({ runs: 300, seed: 4, base: bern(0.8), cand: bern(0.73), baseN: 1000, look: 10, max: 600, rule: qualityOnly });
    expect(worse.approve).toBe(0);
    const same = simulate({ runs: 300, seed: 5, base: bern(0.8), cand: bern(0.8), baseN: 1000, look: 10, max: 600, rule: qualityOnly });
    expect(same.reject).toBe(0);
  }, 20_000);

  it('heavy-tailed (Pareto) losses 7 points worse are never approved (fixed: 0.2 % approved with the 0.01 sd floor)', () => {
    const heavy =
      (shift: number): Draw =>
      (r) => {
        const x = 0.02 * (1 - r()) ** (-1 / 1.1);
        return { q: Math.max(0, 1 - shift - Math.min(1 - shift, x)), h: 0, t: 0 };
      };
    const s = simulate({ runs: 300, seed: 13, base: heavy(0), cand: heavy(0.07), baseN: 1000, look: 10, max: 600, rule: qualityOnly });
    expect(s.approve).toBe(0);
  }, 20_000);

  it('a catastrophic minority the mean hides is approved: a documented limit (pins)', () => {
    // 10 % of answers score 0, the rest are 8 points better: the mean drops 0.8 points, within the
    // 5-point tolerance, so a mean-only gate approves (README, "What the gate does not see").
    const baseline = fromScores(cycle([0.7, 0.8, 0.9], 1000));
    const candidate = fromScores(cycle([0, 0.88, 0.88, 0.88, 0.88, 0.88, 0.88, 0.88, 0.88, 0.88], 3000));
    const look = decideLook(baseline, candidate, DEFAULT_RULE);
    expect(look.outcome).toBe('APPROVE');
  });
});

describe('looks: bursts and thousands of them', () => {
  it('many empty looks then a burst decide as one look at the burst (pins)', () => {
    const baseline = fromScores(cycle([0.7, 0.8, 0.9], 1000));
    const empty = emptyVersionStats();
    for (let i = 0; i < 5000; i++) {
      const look = decideLook(baseline, empty, DEFAULT_RULE);
      expect(look.outcome).toBe('CONTINUE');
    }
    const burst = fromScores(cycle([0.7, 0.8, 0.9], 600));
    expect(decideLook(baseline, mergeVersionStats(empty, burst), DEFAULT_RULE)).toEqual(decideLook(baseline, burst, DEFAULT_RULE));
    expect(decideLook(baseline, burst, DEFAULT_RULE).outcome).toBe('APPROVE');
  });

  it('looks after every sample up to 1,500 (1,500 looks): no A/A reject, no 12-point approve', () => {
    const report = runGateSimulation({ runs: 60, seed: 3, lookSize: 1, maxSamples: 1500, baselineSize: 1000 });
    const seq = (name: string) => report.scenarios.find((s) => s.name.startsWith(name))?.rules.find((r) => r.rule === 'sequential');
    expect(seq('A/A')?.reject).toBe(0);
    expect(seq('A/B, 12-point')?.approve).toBe(0);
    expect(seq('A/B, 3-point')?.approve).toBe(0);
  }, 30_000);
});

describe('scores at the tolerance, tolerance 0, rates of 0 % and 100 %, n near 1e9', () => {
  const big = 1_000_000_000;
  const rates = (n: number) => ({ hallucination_rate: stat(n, 0.03, 0.17), toxicity_rate: stat(n, 0, 0) });
  const at = (n: number, b: number, c: number, tol = 0.05) =>
    decideLook(
      { quality: stat(n, b, 0.2), ...rates(n) },
      { quality: stat(n, c, 0.2), ...rates(n) },
      rule({ tolerances: { ...DEFAULT_RULE.tolerances, qualityDrop: tol } }),
    );

  it('a drop exactly at the tolerance neither passes nor fails, even with 1e9 samples a side (pins)', () => {
    const look = at(big, 0.85, 0.8);
    expect(look.outcome).toBe('CONTINUE');
    expect(look.reason).toContain('straddles the 5-point tolerance');
    expect(at(big, 0.85, 0.801).outcome).toBe('APPROVE');
    expect(at(big, 0.85, 0.799).outcome).toBe('REJECT');
    for (const m of look.metrics) expect(Number.isFinite(m.lower) && Number.isFinite(m.upper)).toBe(true);
  });

  it('tolerance 0: an unchanged candidate is never approved nor rejected; a better one is approved (pins)', () => {
    expect(at(big, 0.8, 0.8, 0).outcome).toBe('CONTINUE');
    expect(at(1000, 0.8, 0.8, 0).outcome).toBe('CONTINUE');
    expect(at(1000, 0.8, 0.9, 0).outcome).toBe('APPROVE');
  });

  it('rates of 0 % and 100 %: equal rates pass, 0 % → 100 % rejects (pins)', () => {
    const q = stat(1000, 0.8, 0.2);
    const all = (n: number) => stat(n, 1, 0);
    expect(decideLook(version(q, all(1000), all(1000)), version(stat(600, 0.8, 0.1), all(600), all(600)), DEFAULT_RULE).outcome).toBe(
      'APPROVE',
    );
    const look = decideLook(version(q), version(stat(600, 0.8, 0.1), all(600)), DEFAULT_RULE);
    expect(look.outcome).toBe('REJECT');
    expect(look.reason).toMatch(/^hallucination rate rose 100\.0 points \(0\.0 % → 100\.0 %\)/);
  });

  it('merging counts past 2^53 makes the statistics malformed, not silently imprecise (pins)', () => {
    const merged = mergeStats(stat(Number.MAX_SAFE_INTEGER, 0.8, 0.2), stat(10, 0.8, 0.2));
    const look = decideLook(version(stat(1000, 0.8, 0.2)), version(merged, stat(600, 0, 0), stat(600, 0, 0)), DEFAULT_RULE);
    expect(look.outcome).toBe('CONTINUE');
    expect(look.reason).toContain('candidate quality statistics are malformed');
  });
});

describe('statistics that cannot come from scores decide nothing and never throw (pins)', () => {
  const good = version(stat(1000, 0.8, 0.2), stat(1000, 0.03, 0.17));
  const bad: Array<[string, SampleStats]> = [
    ['NaN mean', stat(600, Number.NaN, 0.2)],
    ['null mean (JSON NaN)', { n: 600, mean: null as unknown as number, sd: 0.2 }],
    ['negative mean', stat(600, -0.3, 0.2)],
    ['mean above 1', stat(600, 1.7, 0.2)],
    ['negative sd', stat(600, 0.8, -0.1)],
    ['infinite sd', stat(600, 0.8, Number.POSITIVE_INFINITY)],
    ['n 1e20', stat(1e20, 0.8, 0.2)],
    ['n fractional', stat(600.5, 0.8, 0.2)],
    ['n negative', stat(-600, 0.8, 0.2)],
    ['n Infinity', stat(Number.POSITIVE_INFINITY, 0.8, 0.2)],
  ];
  it.each(bad)('%s, on either side and any metric: neither APPROVE nor REJECT, and the look says so', (_name, s) => {
    for (const metric of ['quality', 'hallucination_rate', 'toxicity_rate'] as const) {
      for (const side of ['baseline', 'candidate'] as const) {
        const cand = version(stat(600, 0.5, 0.2), stat(600, 0.9, 0.3), stat(600, 0.9, 0.3));
        const b = side === 'baseline' ? { ...good, [metric]: s } : good;
        const c = side === 'candidate' ? { ...cand, [metric]: s } : cand;
        const look = decideLook(b, c, DEFAULT_RULE);
        expect(look.outcome).not.toBe('APPROVE');
        if (look.outcome === 'CONTINUE') expect(look.reason).toMatch(/malformed|not enough evidence/);
        // A REJECT here comes from the well-formed metrics (the candidate is bad on all three), never the malformed one.
        for (const v of look.metrics.filter((m) => m.metric === metric)) expect(v.verdict).toBe('pending');
      }
    }
  });
});

describe('the reason never writes a bound on the wrong side of the tolerance', () => {
  /** Candidate quality mean whose look has a quality bound (`side`) at `target`, the rates passing. */
  function lookWithBound(side: 'upper' | 'lower', target: number) {
    const baseline = version(stat(1000, 0.8, 0.2), stat(100_000, 0, 0), stat(100_000, 0, 0));
    let mean = 0.78;
    let look = decideLook(baseline, version(stat(2000, mean, 0.2), stat(100_000, 0, 0), stat(100_000, 0, 0)), DEFAULT_RULE);
    for (let i = 0; i < 20; i++) {
      const q = look.metrics.find((m) => m.metric === 'quality');
      mean += (q?.[side] ?? 0) - target;
      look = decideLook(baseline, version(stat(2000, mean, 0.2), stat(100_000, 0, 0), stat(100_000, 0, 0)), DEFAULT_RULE);
    }
    return look;
  }

  // Fixed: bounds were rounded to the nearest tenth: "quality drop at most 5.0 points (< 5)".
  it('an upper bound of 4.97 points reads "at most 4.97 (< 5)"', () => {
    const look = lookWithBound('upper', 0.0497);
    expect(look.outcome).toBe('APPROVE');
    expect(look.reason).toContain('quality drop at most 4.97 points (< 5)');
  });

  it('a lower bound of 5.03 points reads "at least 5.03 ... above the 5-point tolerance"', () => {
    const look = lookWithBound('lower', 0.0503);
    expect(look.outcome).toBe('REJECT');
    expect(look.reason).toContain('the drop is at least 5.03 points, above the 5-point tolerance');
  });
});
