/**
 * The deploy gate simulation: A/A and A/B scenarios of mixtures of the score pools, each run a
 * fresh baseline and a candidate stream seen in looks, decided by the sequential gate
 * (`decideLook`) and by the naive rules on the same streams; per rule, the shares of APPROVE,
 * REJECT and INCONCLUSIVE, the error rates and the samples to a decision.
 */
import { mulberry32 } from '../../common/random.js';
import { decideLook, emptyVersionStats, mergeVersionStats, naiveDecide, sampleStats } from '../../domain/gate/stats.js';
import { DEFAULT_RULE, type DecisionRuleOptions, type GateMetric, type VersionStats } from '../../domain/gate/types.js';
import { defaultDataDir, loadScorePools, poolMeans, type Triple } from './score-pools.js';

export interface SimulationOptions {
  runs: number;
  seed: number;
  lookSize: number;
  maxSamples: number;
  baselineSize: number;
  dataDir?: string;
  /** Decision rule of the sequential gate (DEFAULT_RULE unless given). */
  rule?: DecisionRuleOptions;
}

export type RuleName = 'sequential' | 'naive-one-look' | 'naive-every-look';

export interface RuleSummary {
  rule: RuleName;
  /** Shares of runs (0..1). */
  approve: number;
  reject: number;
  inconclusive: number;
  /** REJECT share when the scenario is harmless on every metric (else undefined). */
  falseReject?: number;
  /** REJECT + INCONCLUSIVE share (an INCONCLUSIVE turned into a reject by the fail-safe default), harmless scenarios only. */
  falseRejectInclInconclusive?: number;
  /** REJECT share when the scenario is harmful on some metric (else undefined). */
  power?: number;
  /** APPROVE share when the scenario is harmful on some metric (a false approve). */
  falseApprove?: number;
  /** Candidate samples at the decision, over runs that reached APPROVE or REJECT (NaN if none). */
  samplesToDecision: { mean: number; median: number; p90: number; decided: number };
  /** Sequential rule only: how many rejects each metric took part in. */
  rejectsBy?: Record<GateMetric, number>;
}

export interface ScenarioReport {
  name: string;
  /** Share of hallucinated-answer interactions in the candidate. */
  candidateMix: number;
  /** Expected harms of the candidate against the baseline (fractions). */
  truth: { qualityDrop: number; hallucinationRateRise: number; toxicityRateRise: number };
  /** Whether some true harm exceeds its tolerance (then a REJECT is the right answer). */
  harmful: boolean;
  rules: RuleSummary[];
}

export interface SimulationReport {
  options: Omit<SimulationOptions, 'dataDir' | 'rule'>;
  rule: DecisionRuleOptions;
  data: {
    file: string;
    rightAnswers: { n: number; quality: number; hallucinationRate: number; toxicityRate: number };
    hallucinatedAnswers: { n: number; quality: number; hallucinationRate: number; toxicityRate: number };
  };
  baselineMix: number;
  scenarios: ScenarioReport[];
}

/** Mixes two 32-bit integers into a seed (for independent streams per scenario). */
function mixSeed(a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9e3779b1) ^ Math.imul((b + 0x7f4a7c15) >>> 0, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function drawStream(rand: () => number, n: number, mix: number, right: Triple[], hallu: Triple[]): Triple[] {
  const out: Triple[] = new Array<Triple>(n);
  for (let i = 0; i < n; i++) {
    const pool = rand() < mix ? hallu : right;
    out[i] = pool[Math.floor(rand() * pool.length)] as Triple;
  }
  return out;
}

function statsOf(stream: Triple[], from: number, to: number): VersionStats {
  const slice = stream.slice(from, to);
  return {
    quality: sampleStats(slice.map((t) => t.quality)),
    hallucination_rate: sampleStats(slice.map((t) => t.hallucination)),
    toxicity_rate: sampleStats(slice.map((t) => t.toxicity)),
  };
}

interface RunOutcome {
  decision: 'APPROVE' | 'REJECT' | 'INCONCLUSIVE';
  samples: number;
  rejectedBy?: GateMetric[];
}

function quantileSorted(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

function summarise(rule: RuleName, outcomes: RunOutcome[], harmful: boolean): RuleSummary {
  const n = outcomes.length;
  const share = (d: RunOutcome['decision']) => outcomes.filter((o) => o.decision === d).length / n;
  const decided = outcomes
    .filter((o) => o.decision !== 'INCONCLUSIVE')
    .map((o) => o.samples)
    .sort((a, b) => a - b);
  const approve = share('APPROVE');
  const reject = share('REJECT');
  const inconclusive = share('INCONCLUSIVE');
  const s: RuleSummary = {
    rule,
    approve,
    reject,
    inconclusive,
    samplesToDecision: {
      mean: decided.length ? decided.reduce((a, b) => a + b, 0) / decided.length : NaN,
      median: quantileSorted(decided, 0.5),
      p90: quantileSorted(decided, 0.9),
      decided: decided.length,
    },
  };
  if (harmful) {
    s.power = reject;
    s.falseApprove = approve;
  } else {
    s.falseReject = reject;
    s.falseRejectInclInconclusive = reject + inconclusive;
  }
  if (rule === 'sequential') {
    const by: Record<GateMetric, number> = { quality: 0, hallucination_rate: 0, toxicity_rate: 0 };
    for (const o of outcomes) for (const m of o.rejectedBy ?? []) by[m]++;
    s.rejectsBy = by;
  }
  return s;
}

function assertPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
}

export function runGateSimulation(opts: SimulationOptions): SimulationReport {
  const { runs, seed, lookSize, maxSamples, baselineSize } = opts;
  assertPositiveInt('runs', runs);
  assertPositiveInt('lookSize', lookSize);
  assertPositiveInt('maxSamples', maxSamples);
  assertPositiveInt('baselineSize', baselineSize);
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  const rule = opts.rule ?? DEFAULT_RULE;
  const tol = rule.tolerances;
  const naiveTol = DEFAULT_RULE.tolerances.qualityDrop;

  const { file, right, hallucinated } = loadScorePools(opts.dataDir ?? defaultDataDir());
  const rm = poolMeans(right);
  const hm = poolMeans(hallucinated);
  const gap = rm.quality - hm.quality; // quality lost per unit of mixture
  if (!(gap > 0)) throw new Error('gate-sim: hallucinated answers do not score lower than right answers; cannot build A/B scenarios');
  const s0 = 0.05;
  const mixFor = (drop: number) => s0 + drop / gap;
  const truthFor = (s: number) => ({
    qualityDrop: (s - s0) * gap,
    hallucinationRateRise: (s - s0) * (hm.hallucinationRate - rm.hallucinationRate),
    toxicityRateRise: (s - s0) * (hm.toxicityRate - rm.toxicityRate),
  });
  // Largest shift keeping every true harm at most half its tolerance.
  const halfShift = Math.min(
    (0.5 * tol.qualityDrop) / gap,
    hm.hallucinationRate > rm.hallucinationRate
      ? (0.5 * tol.hallucinationRateIncrease) / (hm.hallucinationRate - rm.hallucinationRate)
      : Infinity,
    hm.toxicityRate > rm.toxicityRate ? (0.5 * tol.toxicityRateIncrease) / (hm.toxicityRate - rm.toxicityRate) : Infinity,
  );

  const scenarios: { name: string; mix: number }[] = [
    { name: 'A/A (no change)', mix: s0 },
    { name: 'A/B, 12-point quality drop', mix: mixFor(0.12) },
    { name: 'A/B, 3-point quality drop', mix: mixFor(0.03) },
    { name: 'A/B, every harm at most half its tolerance', mix: s0 + halfShift },
  ];
  for (const sc of scenarios) {
    if (sc.mix > 1) throw new Error(`gate-sim: scenario '${sc.name}' needs a mixture share ${sc.mix.toFixed(3)} > 1`);
  }

  const looks: number[] = [];
  for (let n = lookSize; n < maxSamples; n += lookSize) looks.push(n);
  looks.push(maxSamples);

  const reports: ScenarioReport[] = scenarios.map((sc, si) => {
    const truth = truthFor(sc.mix);
    const harmful =
      truth.qualityDrop > tol.qualityDrop + 1e-12 ||
      truth.hallucinationRateRise > tol.hallucinationRateIncrease + 1e-12 ||
      truth.toxicityRateRise > tol.toxicityRateIncrease + 1e-12;
    const rand = mulberry32(mixSeed(seed, si));
    const seq: RunOutcome[] = [];
    const one: RunOutcome[] = [];
    const every: RunOutcome[] = [];
    for (let r = 0; r < runs; r++) {
      const base = drawStream(rand, baselineSize, s0, right, hallucinated);
      const cand = drawStream(rand, maxSamples, sc.mix, right, hallucinated);
      const baseline = statsOf(base, 0, base.length);

      let running = emptyVersionStats();
      let seqOutcome: RunOutcome | undefined;
      let everyOutcome: RunOutcome | undefined;
      let prev = 0;
      for (const n of looks) {
        running = mergeVersionStats(running, statsOf(cand, prev, n));
        prev = n;
        if (n === looks[0]) one.push({ decision: naiveDecide(baseline, running, naiveTol), samples: n });
        if (!everyOutcome && naiveDecide(baseline, running, naiveTol) === 'REJECT') everyOutcome = { decision: 'REJECT', samples: n };
        if (!seqOutcome) {
          const look = decideLook(baseline, running, rule);
          if (look.outcome === 'REJECT') {
            seqOutcome = {
              decision: 'REJECT',
              samples: n,
              rejectedBy: look.metrics.filter((m) => m.verdict === 'fail').map((m) => m.metric),
            };
          } else if (look.outcome === 'APPROVE') seqOutcome = { decision: 'APPROVE', samples: n };
        }
        if (seqOutcome && everyOutcome) break;
      }
      seq.push(seqOutcome ?? { decision: 'INCONCLUSIVE', samples: maxSamples });
      every.push(everyOutcome ?? { decision: 'APPROVE', samples: maxSamples });
    }
    return {
      name: sc.name,
      candidateMix: sc.mix,
      truth,
      harmful,
      rules: [
        summarise('sequential', seq, harmful),
        summarise('naive-one-look', one, harmful),
        summarise('naive-every-look', every, harmful),
      ],
    };
  });

  return {
    options: { runs, seed, lookSize, maxSamples, baselineSize },
    rule,
    data: { file, rightAnswers: rm, hallucinatedAnswers: hm },
    baselineMix: s0,
    scenarios: reports,
  };
}
