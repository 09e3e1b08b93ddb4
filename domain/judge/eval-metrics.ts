/**
 * Agreement metrics for binary labels and real-valued scores (pure, no I/O).
 *
 * Conventions: `labels[i]` is true for the positive class; `scores[i]` is higher when the
 * positive class is more likely. Undefined quantities (no positives, division by zero) are NaN,
 * never a made-up 0 or 1.
 */

/**
 * Area under the ROC curve via the Mann-Whitney U statistic with average ranks for ties:
 * AUROC = (sum of positive ranks - P(P+1)/2) / (P N). A tied positive/negative pair counts 1/2.
 * Returns NaN when either class is empty.
 */
export function auroc(scores: readonly number[], labels: readonly boolean[]): number {
  if (scores.length !== labels.length) throw new Error(`auroc: ${scores.length} scores but ${labels.length} labels`);
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i);
  for (const s of scores) if (Number.isNaN(s)) throw new Error('auroc: scores must not be NaN');
  idx.sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let pos = 0;
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    const v = scores[idx[i] as number] as number;
    while (j + 1 < n && scores[idx[j + 1] as number] === v) j++;
    const avgRank = (i + 1 + (j + 1)) / 2; // ranks are 1-based
    for (let k = i; k <= j; k++) {
      if (labels[idx[k] as number]) {
        pos++;
        rankSumPos += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** Confusion counts when `score >= threshold` predicts the positive class. */
export function confusion(scores: readonly number[], labels: readonly boolean[], threshold = 0.5): Confusion {
  if (scores.length !== labels.length) throw new Error(`confusion: ${scores.length} scores but ${labels.length} labels`);
  return countConfusion(
    scores.map((s) => s >= threshold),
    labels,
  );
}

function countConfusion(predicted: readonly boolean[], labels: readonly boolean[]): Confusion {
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < labels.length; i++) {
    const p = predicted[i] as boolean;
    const actual = labels[i] as boolean;
    if (p && actual) c.tp++;
    else if (p) c.fp++;
    else if (actual) c.fn++;
    else c.tn++;
  }
  return c;
}

function ratio(a: number, b: number): number {
  return b === 0 ? NaN : a / b;
}

export interface BinaryReport extends Confusion {
  n: number;
  positives: number;
  negatives: number;
  threshold: number;
  auroc: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
}

/** AUROC plus accuracy / precision / recall / F1 of the positive class at `threshold`. */
export function binaryReport(scores: readonly number[], labels: readonly boolean[], threshold = 0.5): BinaryReport {
  return reportOf(confusion(scores, labels, threshold), scores, labels, threshold);
}

function reportOf(c: Confusion, scores: readonly number[], labels: readonly boolean[], threshold: number): BinaryReport {
  return {
    ...c,
    n: labels.length,
    positives: c.tp + c.fn,
    negatives: c.tn + c.fp,
    threshold,
    auroc: auroc(scores, labels),
    accuracy: ratio(c.tp + c.tn, labels.length),
    precision: ratio(c.tp, c.tp + c.fp),
    recall: ratio(c.tp, c.tp + c.fn),
    // F1 = 2TP / (2TP + FP + FN): equals the harmonic mean of precision and recall when both exist,
    // and is 0 (not NaN) when nothing is predicted positive although positives exist.
    f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
  };
}

/**
 * The same report when the prediction is not `score >= threshold` (e.g. quality, flagged when its
 * score is below 0.5): confusion counts from `predicted`, AUROC from `scores` (higher = more
 * likely positive). `threshold` is only recorded.
 */
export function binaryReportOf(
  scores: readonly number[],
  predicted: readonly boolean[],
  labels: readonly boolean[],
  threshold = 0.5,
): BinaryReport {
  if (scores.length !== labels.length || predicted.length !== labels.length) {
    throw new Error(`binaryReportOf: ${scores.length} scores, ${predicted.length} predictions but ${labels.length} labels`);
  }
  return reportOf(countConfusion(predicted, labels), scores, labels, threshold);
}

export interface ReliabilityBand {
  /** Lower and upper edge of the predicted-score band (the last band includes 1). */
  from: number;
  to: number;
  n: number;
  /** Mean predicted score in the band, and the observed rate of positives. NaN when empty. */
  meanScore: number;
  observedRate: number;
}

/** Reliability table: scores cut into `bands` equal-width bands, observed positive rate per band. */
export function reliabilityTable(scores: readonly number[], labels: readonly boolean[], bands = 5): ReliabilityBand[] {
  if (scores.length !== labels.length) throw new Error(`reliabilityTable: ${scores.length} scores but ${labels.length} labels`);
  const out: ReliabilityBand[] = [];
  for (let b = 0; b < bands; b++) {
    const from = b / bands;
    const to = (b + 1) / bands;
    let n = 0;
    let sum = 0;
    let pos = 0;
    for (let i = 0; i < scores.length; i++) {
      const s = scores[i] as number;
      if (s >= from && (s < to || (b === bands - 1 && s <= 1))) {
        n++;
        sum += s;
        if (labels[i]) pos++;
      }
    }
    out.push({ from, to, n, meanScore: n ? sum / n : NaN, observedRate: n ? pos / n : NaN });
  }
  return out;
}

/** Expected calibration error: the n-weighted mean |mean score - observed rate| over the bands. */
export function expectedCalibrationError(table: readonly ReliabilityBand[]): number {
  const total = table.reduce((s, b) => s + b.n, 0);
  if (total === 0) return NaN;
  return table.reduce((s, b) => s + (b.n ? (b.n / total) * Math.abs(b.meanScore - b.observedRate) : 0), 0);
}

/**
 * The threshold (one of the observed scores, or 0.5 when that ties) that maximises balanced
 * accuracy (mean of recall and specificity) of `score >= threshold`. NaN when a class is empty.
 */
export function bestThreshold(scores: readonly number[], labels: readonly boolean[]): number {
  const pos = labels.filter(Boolean).length;
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  const candidates = [...new Set(scores)].sort((a, b) => a - b);
  let best = 0.5;
  let bestValue = -1;
  for (const t of [0.5, ...candidates]) {
    const c = confusion(scores, labels, t);
    const v = (c.tp / pos + c.tn / neg) / 2;
    if (v > bestValue + 1e-12) {
      bestValue = v;
      best = t;
    }
  }
  return best;
}

/**
 * Pairs whose two lengths are within `tolerance` (0.2 = ±20 %) of each other: |a - b| <= tolerance * max(a, b).
 * `pairs` are index pairs [negative, positive]; returns those that qualify.
 */
export function lengthMatched<T extends readonly [number, number]>(
  pairs: readonly T[],
  lengthOf: (i: number) => number,
  tolerance = 0.2,
): T[] {
  return pairs.filter(([a, b]) => {
    const la = lengthOf(a);
    const lb = lengthOf(b);
    return Math.abs(la - lb) <= tolerance * Math.max(la, lb);
  });
}
