/**
 * Small statistics on metric series, shared by the performance and resource findings
 * (pure, workflow-safe: no I/O, no clock, no randomness, no Node APIs).
 *
 * Conventions: functions take plain arrays and ignore nothing — callers drop missing values
 * first. Summaries of an empty array are NaN.
 */
import { round } from '../../common/format.js';

/** Arithmetic mean; NaN for an empty array. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Sample standard deviation (n − 1); 0 for fewer than two values. */
export function stddev(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / (values.length - 1));
}

/**
 * The q-quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics (Hyndman-Fan
 * type 7, numpy's and R's default). NaN for an empty array; q is clamped to [0, 1].
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const qq = Math.min(1, Math.max(0, q));
  const pos = (sorted.length - 1) * qq;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/** Median (quantile 0.5). */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Median absolute deviation from the median (unscaled; × 1.4826 estimates σ for normal data). */
export function mad(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const m = median(values);
  return median(values.map((v) => Math.abs(v - m)));
}

export interface LinearFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination, 0..1. A constant `ys` is fitted exactly: r2 = 1. */
  r2: number;
  n: number;
}

/**
 * Ordinary least squares y = intercept + slope · x. Pairs beyond the shorter array are ignored.
 * With fewer than two points, or all xs equal, the slope is 0 and the intercept is mean(ys).
 */
export function linearFit(xs: readonly number[], ys: readonly number[]): LinearFit {
  const n = Math.min(xs.length, ys.length);
  if (n === 0) return { slope: 0, intercept: NaN, r2: 0, n };
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i] as number;
    sy += ys[i] as number;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    const dy = (ys[i] as number) - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const intercept = my - slope * mx;
  let ssRes = 0;
  for (let i = 0; i < n; i++) {
    const e = (ys[i] as number) - (intercept + slope * (xs[i] as number));
    ssRes += e * e;
  }
  // A constant ys (up to floating-point residue) is fitted exactly.
  const tiny = n * (1e-12 * Math.max(1, Math.abs(my))) ** 2;
  const r2 = syy > tiny ? Math.min(1, Math.max(0, 1 - ssRes / syy)) : 1;
  return { slope, intercept, r2, n };
}

export interface ChangePointOptions {
  /** Minimum points on each side of the split. Default 3 (values below 2 are raised to 2). */
  minSegment?: number;
  /**
   * Minimum |after − before| in units of the pooled within-segment standard deviation
   * (an effect size). Default 3.
   */
  minEffect?: number;
  /** Minimum |after − before| / |before|. Default 0.1 (10 %). */
  minRelativeChange?: number;
}

export interface ChangePoint {
  /** Index of the first value of the second segment. */
  index: number;
  /** Mean of values[0 .. index). */
  before: number;
  /** Mean of values[index ..]. */
  after: number;
  /** after / before (Infinity when before is 0 and after is not; 1 when both are 0). */
  ratio: number;
  /** Pooled within-segment standard deviation (the noise the shift is compared with). */
  noise: number;
  /** |after − before| / noise (Infinity for noise-free segments). */
  effect: number;
}

/**
 * The single best mean shift: the split minimising the total within-segment squared error,
 * both segments having ≥ `minSegment` points. Reported only when the shift is large relative
 * to the noise (`minEffect` pooled standard deviations) and to the level (`minRelativeChange`);
 * otherwise undefined.
 */
export function changePoint(values: readonly number[], opts: ChangePointOptions = {}): ChangePoint | undefined {
  const minSegment = Math.max(2, Math.floor(opts.minSegment ?? 3));
  const minEffect = opts.minEffect ?? 3;
  const minRelative = opts.minRelativeChange ?? 0.1;
  const n = values.length;
  if (n < 2 * minSegment) return undefined;

  // Prefix sums of x and x² (shifted by the first value for numerical stability).
  const origin = values[0] as number;
  const s1 = new Array<number>(n + 1).fill(0);
  const s2 = new Array<number>(n + 1).fill(0);
  for (let i = 0; i < n; i++) {
    const v = (values[i] as number) - origin;
    s1[i + 1] = (s1[i] as number) + v;
    s2[i + 1] = (s2[i] as number) + v * v;
  }
  const sse = (a: number, b: number): number => {
    const m = b - a;
    const sum = (s1[b] as number) - (s1[a] as number);
    const sq = (s2[b] as number) - (s2[a] as number);
    return Math.max(0, sq - (sum * sum) / m);
  };

  let best = -1;
  let bestSse = Infinity;
  for (let k = minSegment; k <= n - minSegment; k++) {
    const total = sse(0, k) + sse(k, n);
    if (total < bestSse) {
      bestSse = total;
      best = k;
    }
  }
  if (best < 0) return undefined;

  const before = (s1[best] as number) / best + origin;
  const after = ((s1[n] as number) - (s1[best] as number)) / (n - best) + origin;
  const shift = after - before;
  const noise = Math.sqrt(bestSse / (n - 2));
  // Floating-point residue on noise-free segments must not count as noise.
  const scale = Math.max(Math.abs(before), Math.abs(after), 1);
  const effectiveNoise = noise <= 1e-9 * scale ? 0 : noise;
  const effect = effectiveNoise === 0 ? (shift === 0 ? 0 : Infinity) : Math.abs(shift) / effectiveNoise;
  if (shift === 0 || effect < minEffect) return undefined;
  if (before !== 0 && Math.abs(shift) / Math.abs(before) < minRelative) return undefined;
  const ratio = before === 0 ? (after === 0 ? 1 : Infinity) : after / before;
  return { index: best, before, after, ratio, noise: effectiveNoise, effect };
}

/**
 * Centred rolling median with `halfWindow` points on each side (truncated at the edges).
 * A run shorter than `halfWindow + 1` points cannot move it, which makes it a baseline for
 * spikes; a lasting level shift moves it and is therefore not flagged as a spike.
 */
export function rollingMedian(values: readonly number[], halfWindow: number): number[] {
  const h = Math.max(0, Math.floor(halfWindow));
  return values.map((_, i) => median(values.slice(Math.max(0, i - h), Math.min(values.length, i + h + 1))));
}

/** Maximal runs of consecutive `true` flags, as inclusive [start, end] index pairs. */
export function runs(flags: readonly boolean[]): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  let start = -1;
  for (let i = 0; i <= flags.length; i++) {
    const on = i < flags.length && flags[i] === true;
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      out.push({ start, end: i - 1 });
      start = -1;
    }
  }
  return out;
}

/** Rounds to `digits` decimals (finite numbers only; others are returned unchanged). */

/**
 * Confidence from the amount of data: 0.4 with almost none, rising linearly to 0.95 at
 * `full` points (and capped there).
 */
export function confidenceFromCount(n: number, full: number): number {
  if (n <= 0) return 0;
  return round(0.4 + 0.55 * Math.min(1, n / Math.max(1, full)), 2);
}
