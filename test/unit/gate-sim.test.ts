import { describe, expect, it } from 'vitest';
import { formatReport } from '../../scripts/gate-sim/report.js';
import { runGateSimulation, type SimulationReport } from '../../scripts/gate-sim/simulation.js';

const opts = { runs: 300, seed: 11, lookSize: 10, maxSamples: 600, baselineSize: 1000 };

describe('gate simulation (resampled offline-judge scores, fixed seed)', () => {
  let report: SimulationReport;
  const rules = (name: string) => {
    report ??= runGateSimulation(opts);
    const sc = report.scenarios.find((s) => s.name.startsWith(name));
    if (!sc) throw new Error(`no scenario ${name}`);
    const by = (r: string) => {
      const s = sc.rules.find((x) => x.rule === r);
      if (!s) throw new Error(`no rule ${r}`);
      return s;
    };
    return { sc, seq: by('sequential'), one: by('naive-one-look'), every: by('naive-every-look') };
  };

  it('A/A: the sequential gate rarely rejects, and less often than the naive one-look rule', () => {
    const { sc, seq, one } = rules('A/A');
    expect(sc.harmful).toBe(false);
    expect(seq.falseReject).toBeLessThanOrEqual(0.02);
    expect(one.falseReject).toBeGreaterThan(seq.falseReject ?? 1);
    expect(seq.approve + seq.reject + seq.inconclusive).toBeCloseTo(1, 12);
    expect(seq.falseRejectInclInconclusive).toBeCloseTo(seq.reject + seq.inconclusive, 12);
  });

  it('a 12-point quality drop is rejected with power >= 97 % within the sample budget', () => {
    const { sc, seq } = rules('A/B, 12-point');
    expect(sc.truth.qualityDrop).toBeCloseTo(0.12, 10);
    expect(sc.harmful).toBe(true);
    expect(seq.power).toBeGreaterThanOrEqual(0.97);
    expect(seq.samplesToDecision.p90).toBeLessThanOrEqual(opts.maxSamples);
  });

  it('is deterministic for a seed and prints a table', () => {
    const again = runGateSimulation({ ...opts, runs: 50 });
    const twice = runGateSimulation({ ...opts, runs: 50 });
    expect(twice).toEqual(again);
    const text = formatReport(again);
    expect(text).toContain('A/A (no change)');
    expect(text).toContain('naive, one look');
    expect(() => runGateSimulation({ ...opts, runs: 0 })).toThrow(/runs/);
  });
});
