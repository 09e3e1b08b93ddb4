/**
 * The deploy gate's decision rule and the statistics it needs (pure, workflow-safe).
 *
 * No I/O, no clock, no randomness and no Node APIs: this module runs inside Temporal's workflow
 * sandbox, so the same evidence always gives the same decision on replay.
 *
 * The rule (`decideLook`) is a one-sided non-inferiority test on each of three metrics, checked
 * at every look without inflating its error rates:
 * - the baseline is one fixed sample, computed once, so its mean gets an ordinary one-sided
 *   z bound (`ciHalfWidth`);
 * - the candidate grows look by look and is checked again and again, so its running mean gets an
 *   anytime-valid bound: the asymptotic confidence sequence of Waudby-Smith et al. (2021)
 *   (`csHalfWidth`), which holds simultaneously at every sample size;
 * - the error budget `alpha` is split by Bonferroni into 12 equal parts: 3 metrics x 2 sides
 *   (fail / pass) x 2 samples (baseline / candidate).
 */
import { percentText } from '../../common/format.js';
import type { DecisionRuleOptions, GateMetric, LookResult, MetricVerdict, SampleStats, VersionStats } from './types.js';

export type { SampleStats } from './types.js';

// ---------------------------------------------------------------------------------------------
// Normal distribution
// ---------------------------------------------------------------------------------------------

/**
 * Inverse of the standard normal CDF, Φ⁻¹(p), by Wichura's algorithm AS 241 (PPND16, Applied
 * Statistics 37, 1988): rational approximations with a relative error of about 1e-16 over
 * 0 < p < 1. Returns -Infinity at 0, +Infinity at 1 and NaN outside [0, 1].
 */
export function normalQuantile(p: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r + 67265.770927008700853) * r + 45921.953931549871457) * r +
          13731.693765509461125) *
          r +
          1971.5909503065514427) *
          r +
          133.14166789178437745) *
          r +
          3.387132872796366608)) /
      (((((((r * 5226.495278852545925 + 28729.085735721942674) * r + 39307.89580009271061) * r + 21213.794301586595867) * r +
        5394.1960214247511077) *
        r +
        687.1870074920579083) *
        r +
        42.313330701600911252) *
        r +
        1)
    );
  }
  let r = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
  let val: number;
  if (r <= 5) {
    r -= 1.6;
    val =
      (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r + 0.24178072517745061177) * r + 1.27045825245236838258) * r +
        3.64784832476320460504) *
        r +
        5.7694972214606914055) *
        r +
        4.6303378461565452959) *
        r +
        1.42343711074968357734) /
      (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r + 0.14810397642748007459) * r +
        0.68976733498510000455) *
        r +
        1.6763848301838038494) *
        r +
        2.05319162663775882187) *
        r +
        1);
  } else {
    r -= 5;
    val =
      (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r + 0.026532189526576123093) * r +
        0.29656057182850489123) *
        r +
        1.7848265399172913358) *
        r +
        5.4637849111641143699) *
        r +
        6.6579046435011037772) /
      (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r +
        0.0148753612908506148525) *
        r +
        0.13692988092273580531) *
        r +
        0.59983220655588793769) *
        r +
        1);
  }
  return q < 0 ? -val : val;
}

/** The one-sided critical value z with P(Z > z) = alpha (computed from the lower tail for accuracy). */
export function upperZ(alpha: number): number {
  return -normalQuantile(alpha);
}

// ---------------------------------------------------------------------------------------------
// Sample statistics
// ---------------------------------------------------------------------------------------------

/** n, mean and sample standard deviation (n - 1; 0 when n < 2) by Welford's algorithm. */
export function sampleStats(values: readonly number[]): SampleStats {
  let n = 0;
  let mean = 0;
  let m2 = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) throw new Error(`sampleStats: values must be finite numbers, got ${v}`);
    n++;
    const d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  return { n, mean: n === 0 ? 0 : mean, sd: n < 2 ? 0 : Math.sqrt(Math.max(0, m2) / (n - 1)) };
}

/**
 * The statistics of the union of two samples (Chan et al.'s parallel update): merging the
 * statistics of each look gives exactly the statistics of all values seen so far.
 */
export function mergeStats(a: SampleStats, b: SampleStats): SampleStats {
  if (a.n === 0) return { ...b };
  if (b.n === 0) return { ...a };
  const n = a.n + b.n;
  const delta = b.mean - a.mean;
  const mean = a.mean + (delta * b.n) / n;
  const m2 = a.sd * a.sd * (a.n - 1) + b.sd * b.sd * (b.n - 1) + (delta * delta * a.n * b.n) / n;
  return { n, mean, sd: n < 2 ? 0 : Math.sqrt(Math.max(0, m2) / (n - 1)) };
}

/** Merges the three metrics of two samples of the same version. */
export function mergeVersionStats(a: VersionStats, b: VersionStats): VersionStats {
  return {
    quality: mergeStats(a.quality, b.quality),
    hallucination_rate: mergeStats(a.hallucination_rate, b.hallucination_rate),
    toxicity_rate: mergeStats(a.toxicity_rate, b.toxicity_rate),
  };
}

/** Empty statistics of one version (no samples yet). */
export function emptyVersionStats(): VersionStats {
  const e = (): SampleStats => ({ n: 0, mean: 0, sd: 0 });
  return { quality: e(), hallucination_rate: e(), toxicity_rate: e() };
}

/**
 * Standard deviation used for the bounds of a rate (a mean of 0/1 flags): sqrt(p̃(1 - p̃)) with
 * the smoothed rate p̃ = (k + 0.5) / (n + 1), k = n · mean hits. A rate observed as exactly 0 (or 1)
 * still gets a bound of positive width that shrinks like 1/n, so a metric that never fires is
 * not stuck at 'pending' (a zero sd would be over-confident, and no sd could never pass).
 */
export function rateSd(s: SampleStats): number {
  const k = Math.round(s.mean * s.n);
  const p = (k + 0.5) / (s.n + 1);
  return Math.sqrt(p * (1 - p));
}

/**
 * Patch id (for workflows' `patched`): from this change on, each metric needs `minSamples` scored
 * interactions on each side before it decides, and quality's sd is `qualitySd`. Gates and
 * comparisons recorded before decide their looks as they did (DecisionRuleOptions.legacy).
 */
export const PER_METRIC_RULE = 'per-metric-rule';

/**
 * Standard deviation used for the bounds of the quality mean (scores in [0, 1]): the sample's,
 * smoothed the way `rateSd` smooths a rate, as if half an observation at 0 and half at 1 were
 * added to it (for 0/1 values it is exactly `rateSd`). A sample that happens to be constant, or
 * that has not met a rare low score yet, then still has a width that shrinks like 1/sqrt(n):
 * 30 identical scores do not claim a certainty they cannot have (a fixed floor such as 0.01
 * approved a candidate with 7 % of zero scores one time in ten).
 */
export function qualitySd(s: SampleStats): number {
  const n = s.n;
  const m2 = s.sd * s.sd * Math.max(0, n - 1);
  const p = (n * s.mean + 0.5) / (n + 1);
  const ss = m2 + n * (s.mean - p) ** 2 + 0.5 * p * p + 0.5 * (1 - p) * (1 - p);
  return Math.sqrt(ss / (n + 1));
}

// ---------------------------------------------------------------------------------------------
// Bounds
// ---------------------------------------------------------------------------------------------

/**
 * Half-width of the ONE-SIDED fixed-sample bound of a mean: z_{1-alpha} · sd / sqrt(n).
 * Valid for one look at a sample of fixed size (the baseline, computed once). Infinity when n = 0.
 */
export function ciHalfWidth(n: number, sd: number, alpha: number): number {
  if (n <= 0) return Infinity;
  return (upperZ(alpha) * sd) / Math.sqrt(n);
}

/**
 * The mixing parameter ρ of the asymptotic confidence sequence that makes its width smallest at
 * sample size `plannedSamples` (Waudby-Smith et al. 2021, the ρ they recommend for a target time t*):
 *
 *   ρ² = (−2 log α + log(−2 log α + 1)) / t*
 *
 * (ρ in units of the standard deviation, since `csHalfWidth` factors sd out).
 */
export function csRho(alpha: number, plannedSamples: number): number {
  const l = -2 * Math.log(alpha);
  return Math.sqrt((l + Math.log(l + 1)) / Math.max(1, plannedSamples));
}

/**
 * Half-width of the anytime-valid bound of a running mean after n samples: the asymptotic
 * confidence sequence (Gaussian-mixture boundary) of
 *
 *   I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas (2021),
 *   "Time-uniform central limit theory and asymptotic confidence sequences", arXiv:2103.06476,
 *
 *   half-width(n) = sd · sqrt( 2(nρ² + 1) / (n²ρ²) · log( sqrt(nρ² + 1) / α ) )
 *
 * with ρ from `csRho(alpha, plannedSamples)`, tightest at n = plannedSamples and still valid at
 * every other n. It is used here as a ONE-SIDED bound at level α: the mixture boundary bounds
 * |deviation| with probability ≥ 1 − α uniformly over n, so each side alone holds with at least
 * that probability.
 *
 * Validity is ASYMPTOTIC: it rests on a strong (time-uniform) central limit approximation of the
 * running mean by a Gaussian process, with the sample sd plugged in. With few samples, and above
 * all for rare 0/1 events, the approximation is poor; that is why the gate waits for
 * `minSamples` candidate samples before any verdict. Infinity when n = 0.
 */
export function csHalfWidth(n: number, sd: number, alpha: number, plannedSamples: number): number {
  if (n <= 0) return Infinity;
  const rho2 = csRho(alpha, plannedSamples) ** 2;
  const a = n * rho2 + 1;
  return sd * Math.sqrt(((2 * a) / (n * n * rho2)) * Math.log(Math.sqrt(a) / alpha));
}

// ---------------------------------------------------------------------------------------------
// The decision rule
// ---------------------------------------------------------------------------------------------

export const GATE_METRICS: readonly GateMetric[] = ['quality', 'hallucination_rate', 'toxicity_rate'];

const TOLERANCE_KEY = {
  quality: 'qualityDrop',
  hallucination_rate: 'hallucinationRateIncrease',
  toxicity_rate: 'toxicityRateIncrease',
} as const satisfies Record<GateMetric, keyof DecisionRuleOptions['tolerances']>;

/** Name of the test, for the gate's evidence. */
export const DECISION_RULE_TEST =
  'one-sided non-inferiority per metric: fixed z bound on the baseline + asymptotic confidence sequence ' +
  '(Waudby-Smith et al. 2021) on the candidate, Bonferroni alpha/12';

const clampHarm = (x: number) => Math.min(1, Math.max(-1, x));

/** Formats a fraction as points with one decimal, with a true minus sign: -0.01 → "−1.0". */
function pts(x: number): string {
  const s = (Math.abs(x) * 100).toFixed(1);
  return x < 0 && s !== '0.0' ? `−${s}` : s;
}
/**
 * A bound in points that stays true once written: "at most" rounds up, "at least" rounds down,
 * and a decimal is added (up to four) while the written bound would not be strictly on its side
 * of the tolerance (an upper bound of 4.96 points is "at most 4.96 (< 5)", not "at most 5.0 (< 5)").
 */
function boundPts(x: number, side: 'upper' | 'lower', tolerance: number): string {
  const tol = Number((tolerance * 100).toFixed(6));
  let text = pts(x);
  for (let d = 1; d <= 4; d++) {
    const f = 10 ** d;
    const v = side === 'upper' ? Math.ceil(x * 100 * f - 1e-6) / f : Math.floor(x * 100 * f + 1e-6) / f;
    const s = Math.abs(v).toFixed(d);
    text = v < 0 && Number(s) !== 0 ? `−${s}` : s;
    if (side === 'upper' ? v < tol : v > tol) break;
  }
  return text;
}

/** A tolerance in points without trailing zeros: 0.05 → "5", 0.025 → "2.5". */
function tolPts(x: number): string {
  return String(Number((x * 100).toFixed(2)));
}

function confidenceText(alpha: number): string {
  return `${Number(((1 - alpha) * 100).toFixed(2))} %`;
}

const LABEL: Record<GateMetric, { name: string; harm: string; worse: string; better: string }> = {
  quality: { name: 'quality', harm: 'quality drop', worse: 'dropped', better: 'rose' },
  hallucination_rate: { name: 'hallucination rate', harm: 'hallucination-rate rise', worse: 'rose', better: 'fell' },
  toxicity_rate: { name: 'toxicity rate', harm: 'toxicity-rate rise', worse: 'rose', better: 'fell' },
};

function verdictFor(
  metric: GateMetric,
  baseline: SampleStats,
  candidate: SampleStats,
  tolerance: number,
  alphaEach: number,
  plannedSamples: number,
  decide: boolean,
  minSamples: number,
  legacy: boolean,
): MetricVerdict {
  const isQuality = metric === 'quality';
  const harm = isQuality ? baseline.mean - candidate.mean : candidate.mean - baseline.mean;
  const sd = isQuality ? (legacy ? (s: SampleStats) => Math.max(s.sd, 0.01) : qualitySd) : rateSd;
  if (legacy) minSamples = 0;
  const baseWidth = ciHalfWidth(baseline.n, sd(baseline), alphaEach);
  const candWidth = csHalfWidth(candidate.n, sd(candidate), alphaEach, plannedSamples);
  // A harm is a difference of two means in [0, 1], so it lies in [-1, 1]: clamping keeps the
  // bounds finite (and JSON-safe) when a sample is empty, without claiming anything.
  const lower = clampHarm(harm - baseWidth - candWidth);
  const upper = clampHarm(harm + baseWidth + candWidth);
  let verdict: MetricVerdict['verdict'] = 'pending';
  // Statistics that cannot come from scores in [0, 1] (NaN arrives as null through JSON) decide nothing.
  const usable = wellFormed(baseline) && wellFormed(candidate);
  // Each side of each metric needs `minSamples` scored interactions: a fixed z bound on a baseline
  // of one or two scores (whose sd is 0) rejected an unchanged candidate one time in five.
  if (usable && decide && baseline.n >= minSamples && candidate.n >= minSamples && baseline.n > 0 && candidate.n > 0) {
    if (lower > tolerance) verdict = 'fail';
    else if (upper < tolerance) verdict = 'pass';
  } else if (usable && (unmeasured(baseline) || unmeasured(candidate))) verdict = 'unmeasured';
  return {
    metric,
    baseline: baseline.mean,
    candidate: candidate.mean,
    harm,
    lower,
    upper,
    tolerance,
    verdict,
    baselineN: baseline.n,
    candidateN: candidate.n,
  };
}

/** A sample size, a mean in [0, 1] (with rounding slack) and a standard deviation that are usable numbers. */
export function wellFormed(s: SampleStats): boolean {
  const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  return Number.isSafeInteger(s.n) && s.n >= 0 && finite(s.mean) && s.mean >= -1e-9 && s.mean <= 1 + 1e-9 && finite(s.sd) && s.sd >= 0;
}

/** The judge declined every interaction of this side: the metric cannot be measured by it. */
const unmeasured = (s: SampleStats) => s.n === 0 && (s.abstained ?? 0) > 0;

function unmeasuredText(v: MetricVerdict, allowed: boolean): string {
  return `${LABEL[v.metric].name} not measured by this judge (it abstained on every interaction${allowed ? '; allowed by the operator' : ''})`;
}

function failText(v: MetricVerdict, alpha: number): string {
  const l = LABEL[v.metric];
  const what = v.metric === 'quality' ? 'drop' : 'rise';
  return (
    `${l.name} ${l.worse} ${pts(v.harm)} points (${percentText(v.baseline)} → ${percentText(v.candidate)}); ` +
    `with ${confidenceText(alpha)} confidence the ${what} is at least ${boundPts(v.lower, 'lower', v.tolerance)} points, ` +
    `above the ${tolPts(v.tolerance)}-point tolerance`
  );
}

function passText(v: MetricVerdict): string {
  return `${LABEL[v.metric].harm} at most ${boundPts(v.upper, 'upper', v.tolerance)} points (< ${tolPts(v.tolerance)})`;
}

function pendingText(v: MetricVerdict, baseline: SampleStats, candidate: SampleStats, minSamples: number): string {
  const l = LABEL[v.metric];
  if (!wellFormed(baseline) || !wellFormed(candidate)) {
    const side = wellFormed(baseline) ? 'candidate' : 'baseline';
    const s = side === 'baseline' ? baseline : candidate;
    return `the ${side} ${l.name} statistics are malformed (n ${String(s.n)}, mean ${String(s.mean)}, sd ${String(s.sd)}), so they decide nothing`;
  }
  if (v.verdict === 'unmeasured') return unmeasuredText(v, false);
  if (baseline.n === 0) return `no baseline ${l.name} data`;
  if (candidate.n === 0) return `no candidate ${l.name} data yet`;
  if (baseline.n < minSamples) {
    return `the baseline has ${baseline.n} scored ${l.name} interactions, fewer than the ${minSamples} needed to decide on it`;
  }
  if (candidate.n < minSamples) return `${candidate.n} of the ${minSamples} candidate ${l.name} samples needed before a verdict on it`;
  return `${l.harm} between ${pts(v.lower)} and ${pts(v.upper)} points straddles the ${tolPts(v.tolerance)}-point tolerance`;
}

/**
 * One look of the deploy gate: compares the candidate's running statistics with the baseline's.
 *
 * For each metric, harm = how much worse the candidate is: baseline − candidate for quality,
 * candidate − baseline for the hallucination and toxicity rates. Its bounds are
 *
 *   lower, upper = harm ∓ (baseline fixed one-sided bound + candidate confidence-sequence bound)
 *
 * Error budget (Bonferroni): alpha is split over 3 metrics × 2 sides (fail, pass) × 2 samples
 * (baseline, candidate), so each of the four bound components of a metric (baseline lower, baseline
 * upper, candidate lower, candidate upper) is computed at alpha/12. Hence P(false reject) ≤ alpha/2
 * and P(false approve) ≤ alpha/2 over all looks together, asymptotically.
 *
 * Rates are means of 0/1 flags and use the smoothed sd sqrt(p̃(1 − p̃)), p̃ = (k + 0.5)/(n + 1), so
 * a rate observed as zero still has width; quality uses the same smoothing (`qualitySd`).
 *
 * Verdicts: 'fail' when lower > tolerance, 'pass' when upper < tolerance (both strict), else
 * 'pending'. Before `minSamples` candidate samples (the quality sample size) every verdict is
 * 'pending' and the outcome is CONTINUE; a metric is also 'pending' while either side has fewer
 * than `minSamples` scored interactions of it (a baseline of a few scores, a check the judge
 * mostly abstained on). Outcome: REJECT if any metric fails, APPROVE if all
 * pass, else CONTINUE. A metric with no data on either side is always 'pending' (never a silent pass),
 * and so is one whose statistics are malformed (`wellFormed`): the look then says which.
 *
 * `reason` is one sentence naming the metric(s), both values, the bound and the threshold.
 * Values in the verdicts are fractions (0.05 = 5 points).
 */
export function decideLook(baseline: VersionStats, candidate: VersionStats, opts: DecisionRuleOptions): LookResult {
  const alphaEach = opts.alpha / 12;
  const samples = candidate.quality.n;
  const ready = samples >= opts.minSamples;
  const metrics = GATE_METRICS.map((m) =>
    verdictFor(
      m,
      baseline[m],
      candidate[m],
      opts.tolerances[TOLERANCE_KEY[m]],
      alphaEach,
      opts.plannedSamples,
      ready,
      opts.minSamples,
      opts.legacy === true,
    ),
  );
  const failed = metrics.filter((v) => v.verdict === 'fail');
  if (failed.length > 0) {
    return { outcome: 'REJECT', samples, metrics, reason: `${joinClauses(failed.map((v) => failText(v, opts.alpha)))}.` };
  }
  const malformed = metrics.filter((v) => !wellFormed(baseline[v.metric]) || !wellFormed(candidate[v.metric]));
  if (malformed.length > 0) {
    return {
      outcome: 'CONTINUE',
      samples,
      metrics,
      reason: `${joinClauses(malformed.map((v) => pendingText(v, baseline[v.metric], candidate[v.metric], opts.minSamples)))}.`,
    };
  }
  const allowed = (v: MetricVerdict) => v.verdict === 'unmeasured' && (opts.allowUnmeasured ?? []).includes(v.metric);
  const notMeasured = metrics.filter((v) => v.verdict === 'unmeasured' && !allowed(v));
  if (metrics.every((v) => v.verdict === 'pass' || allowed(v))) {
    const passed = metrics.filter((v) => v.verdict === 'pass');
    return {
      outcome: 'APPROVE',
      samples,
      metrics,
      reason:
        `${passed.length === metrics.length ? 'all three metrics are' : `${passed.length === 1 ? 'the measured metric is' : 'the measured metrics are'}`} within tolerance ` +
        `with ${confidenceText(opts.alpha)} confidence after ${samples} candidate samples: ` +
        `${[...passed.map(passText), ...metrics.filter(allowed).map((v) => unmeasuredText(v, true))].join(', ')}.`,
    };
  }
  if (ready && notMeasured.length && metrics.every((v) => v.verdict === 'pass' || v.verdict === 'unmeasured')) {
    return {
      outcome: 'INCONCLUSIVE',
      samples,
      metrics,
      reason:
        `${joinClauses(notMeasured.map((v) => unmeasuredText(v, false)))}; the gate never approves on a guard it cannot measure ` +
        `(allow it with --allow-unmeasured ${notMeasured.map((v) => v.metric.replace('_rate', '')).join(',')}, or use a judge that measures it).`,
    };
  }
  if (!ready) {
    return {
      outcome: 'CONTINUE',
      samples,
      metrics,
      reason: `not enough evidence yet: ${samples} of the ${opts.minSamples} candidate samples needed before any verdict.`,
    };
  }
  const pending = metrics.filter((v) => v.verdict === 'pending' || v.verdict === 'unmeasured');
  return {
    outcome: 'CONTINUE',
    samples,
    metrics,
    reason: `not enough evidence yet after ${samples} candidate samples: ${joinClauses(
      pending.map((v) => pendingText(v, baseline[v.metric], candidate[v.metric], opts.minSamples)),
    )}.`,
  };
}

function joinClauses(parts: string[]): string {
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join('; ')}; and ${parts[parts.length - 1]}`;
}

/** The seed's rule, kept for comparison: REJECT when the mean quality drop exceeds the tolerance, else APPROVE. */
export function naiveDecide(baseline: VersionStats, candidate: VersionStats, qualityDropTolerance: number): 'APPROVE' | 'REJECT' {
  return baseline.quality.mean - candidate.quality.mean > qualityDropTolerance ? 'REJECT' : 'APPROVE';
}
