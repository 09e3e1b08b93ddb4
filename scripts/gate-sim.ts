/**
 * Measures the deploy gate's error rates by simulation.
 *
 *   npx tsx scripts/gate-sim.ts [--runs N] [--seed S] [--look-size N] [--max-samples N]
 *                               [--baseline-size N] [--data DIR] [--json]
 *
 * Score streams are resampled from real judge scores: the offline judge scores every right
 * answer and every hallucinated answer of halueval/qa_one-turn.jsonl (prompt = question,
 * context = knowledge), giving one triple per answer: quality overall, hallucination flag
 * (score ≥ 0.5) and toxicity flag (toxicity ≥ 0.5). A "version" is a mixture: each interaction
 * is a hallucinated-answer triple with probability s, else a right-answer triple, drawn with a
 * seeded PRNG (mulberry32). The baseline version has s0 = 0.05.
 *
 * Scenarios: A/A (candidate s = s0); A/B with s chosen so the expected quality drop is exactly
 * 12 points; a small A/B at a 3-point quality drop; and an A/B where every metric's true harm is
 * at most half its tolerance. The true harms of each scenario are printed: the mixture moves
 * quality and the hallucination rate together, so a scenario can be within one tolerance and
 * beyond another.
 *
 * Each run draws a fresh baseline of `baselineSize` interactions, then a candidate stream of
 * `maxSamples`, seen in looks of `lookSize`. Rules, on the same streams:
 * - sequential: `decideLook` with DEFAULT_RULE at every look; stops at the first APPROVE or
 *   REJECT; INCONCLUSIVE at maxSamples.
 * - naive, one look: the seed's rule (mean drop > 5 points → REJECT) at the first look.
 * - naive, every look: REJECT at the first look whose mean drop > 5 points, else APPROVE at the end.
 *
 * DIR defaults to $OPTIINFRA_DATA_DIR, else the repository's data/ folder.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_RULE, type DecisionRuleOptions, type GateMetric, type VersionStats } from '../domain/gate/types.js';
import { offlineJudge } from '../domain/judge/offline-judge.js';
import { decideLook, emptyVersionStats, mergeVersionStats, naiveDecide, sampleStats } from '../domain/gate/stats.js';
import { resolveDataDir } from '../stack/sim/collector-simulator.js';
import { mulberry32 } from '../common/random.js';

export { mulberry32 };

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

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

interface Triple {
  quality: number;
  hallucination: 0 | 1;
  toxicity: 0 | 1;
}

export function defaultDataDir(): string {
  return resolveDataDir().dir;
}

function judgeTriple(prompt: string, context: string, response: string): Triple {
  const input = { prompt, context, response };
  return {
    quality: offlineJudge('quality', input).overall,
    hallucination: offlineJudge('hallucination', input).score >= 0.5 ? 1 : 0,
    toxicity: offlineJudge('toxicity', input).toxicity >= 0.5 ? 1 : 0,
  };
}

const pools = new Map<string, { right: Triple[]; hallucinated: Triple[] }>();

/** Judge scores of the right and the hallucinated answers (cached per file; the judge is deterministic). */
export function loadScorePools(dataDir: string): { file: string; right: Triple[]; hallucinated: Triple[] } {
  const file = path.join(dataDir, 'halueval', 'qa_one-turn.jsonl');
  const cached = pools.get(file);
  if (cached) return { file, ...cached };
  const right: Triple[] = [];
  const hallucinated: Triple[] = [];
  let malformed = 0;
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    if (!line.trim()) continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      malformed++;
      continue;
    }
    const { knowledge: k, question: q, right_answer: ra, hallucinated_answer: ha } = o ?? {};
    if (typeof k !== 'string' || typeof q !== 'string' || typeof ra !== 'string' || typeof ha !== 'string') {
      malformed++;
      continue;
    }
    right.push(judgeTriple(q, k, ra));
    hallucinated.push(judgeTriple(q, k, ha));
  }
  if (malformed > 0) process.stderr.write(`gate-sim: skipped ${malformed} malformed record(s) in ${file}\n`);
  if (right.length === 0) throw new Error(`gate-sim: no usable records in ${file}`);
  pools.set(file, { right, hallucinated });
  return { file, right, hallucinated };
}

function poolMeans(p: Triple[]) {
  let q = 0;
  let h = 0;
  let t = 0;
  for (const x of p) {
    q += x.quality;
    h += x.hallucination;
    t += x.toxicity;
  }
  return { n: p.length, quality: q / p.length, hallucinationRate: h / p.length, toxicityRate: t / p.length };
}

// ---------------------------------------------------------------------------------------------
// Simulation
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

const RULE_LABEL: Record<RuleName, string> = {
  sequential: 'sequential (decideLook)',
  'naive-one-look': 'naive, one look',
  'naive-every-look': 'naive, every look',
};

function p(x: number | undefined): string {
  return x === undefined ? '—' : `${(100 * x).toFixed(1)} %`;
}
function num(x: number): string {
  if (Number.isNaN(x)) return '—';
  const r = Math.round(x * 10) / 10;
  return Number.isInteger(r) ? String(r) : r.toFixed(1);
}

export function formatReport(rep: SimulationReport): string {
  const lines: string[] = [];
  const { rightAnswers: ra, hallucinatedAnswers: ha } = rep.data;
  const o = rep.options;
  lines.push(
    `Deploy gate simulation: ${o.runs} runs per scenario, seed ${o.seed}, baseline ${o.baselineSize} samples, looks of ${o.lookSize} up to ${o.maxSamples}.`,
  );
  lines.push(
    `Scores: offline judge on ${rep.data.file}: right answers (n=${ra.n}) quality ${p(ra.quality)}, hallucination ${p(ra.hallucinationRate)}, toxicity ${p(ra.toxicityRate)}; ` +
      `hallucinated answers (n=${ha.n}) quality ${p(ha.quality)}, hallucination ${p(ha.hallucinationRate)}, toxicity ${p(ha.toxicityRate)}.`,
  );
  const r = rep.rule;
  lines.push(
    `Rule: alpha ${r.alpha}, minSamples ${r.minSamples}, plannedSamples ${r.plannedSamples}, tolerances quality ${100 * r.tolerances.qualityDrop} / hallucination ${100 * r.tolerances.hallucinationRateIncrease} / toxicity ${100 * r.tolerances.toxicityRateIncrease} points; baseline mixture ${rep.baselineMix}.`,
  );
  const header = [
    'rule',
    'approve',
    'reject',
    'inconcl.',
    'false rej.',
    'f.rej+inc.',
    'power',
    'false appr.',
    'mean n',
    'median n',
    'p90 n',
  ];
  for (const sc of rep.scenarios) {
    lines.push('');
    const t = sc.truth;
    lines.push(
      `${sc.name}: candidate mixture ${sc.candidateMix.toFixed(3)}; true quality drop ${(100 * t.qualityDrop).toFixed(1)}, hallucination-rate rise ${(100 * t.hallucinationRateRise).toFixed(1)}, toxicity-rate rise ${(100 * t.toxicityRateRise).toFixed(2)} points — ${sc.harmful ? 'harmful (some harm above its tolerance): REJECT is right' : 'harmless (every harm within tolerance): REJECT is a false reject'}`,
    );
    const rows = sc.rules.map((s) => [
      RULE_LABEL[s.rule],
      p(s.approve),
      p(s.reject),
      p(s.inconclusive),
      p(s.falseReject),
      p(s.falseRejectInclInconclusive),
      p(s.power),
      p(s.falseApprove),
      num(s.samplesToDecision.mean),
      num(s.samplesToDecision.median),
      num(s.samplesToDecision.p90),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
    const fmt = (row: string[]) =>
      row.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
    lines.push(`  ${fmt(header)}`);
    for (const row of rows) lines.push(`  ${fmt(row)}`);
    const seq = sc.rules.find((s) => s.rule === 'sequential');
    if (seq?.rejectsBy && seq.reject > 0) {
      const b = seq.rejectsBy;
      lines.push(
        `  sequential rejects involving: quality ${b.quality}, hallucination rate ${b.hallucination_rate}, toxicity rate ${b.toxicity_rate} (of ${o.runs} runs)`,
      );
    }
  }
  lines.push('');
  lines.push(
    'Samples to decision count candidate samples over runs that reached APPROVE or REJECT. naive, every look APPROVEs at the last look.',
  );
  return lines.join('\n');
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}
function integer(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be an integer');
  return n;
}

export function main(argv: string[] = process.argv): void {
  const program = new Command()
    .name('gate-sim')
    .description('Simulates the deploy gate on resampled judge scores and reports its error rates')
    .option('--runs <n>', 'runs per scenario', positiveInt, 2000)
    .option('--seed <s>', 'PRNG seed', integer, 1)
    .option('--look-size <n>', 'candidate samples per look', positiveInt, 10)
    .option('--max-samples <n>', 'candidate samples before INCONCLUSIVE', positiveInt, 600)
    .option('--baseline-size <n>', 'baseline samples', positiveInt, 1000)
    .option('--data <dir>', 'data directory (default $OPTIINFRA_DATA_DIR or data/ of the repository)')
    .option('--json', 'also print the report as JSON (last line)', false)
    .parse(argv);
  const o = program.opts<{
    runs: number;
    seed: number;
    lookSize: number;
    maxSamples: number;
    baselineSize: number;
    data?: string;
    json: boolean;
  }>();
  const report = runGateSimulation({
    runs: o.runs,
    seed: o.seed,
    lookSize: o.lookSize,
    maxSamples: o.maxSamples,
    baselineSize: o.baselineSize,
    ...(o.data ? { dataDir: path.resolve(o.data) } : {}),
  });
  console.log(formatReport(report));
  if (o.json) console.log(JSON.stringify(report));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (err) {
    console.error(`gate-sim: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
