/**
 * The alt-profanity-check model (PyPI package alt-profanity-check 1.9.1, MIT licence; Victor
 * Zhou, Menelaos Kotoglou, Dimitrios Mistriotis), reproduced in TypeScript: a scikit-learn
 * TfidfVectorizer over single words and a CalibratedClassifierCV of five LinearSVC folds with
 * sigmoid calibration, trained by its authors on about 200,000 human-labelled texts (the Davidson
 * et al. tweets and the Jigsaw/Wikipedia toxic comments; that data is not shipped here).
 * Parameters in profanity-model.data.ts, written by scripts/import-profanity-model.py, which also
 * writes the parity fixture (texts and scikit-learn's probabilities) the unit tests compare with.
 *
 * `predict_proba` as scikit-learn computes it:
 * 1. lower-case with Python's `str.lower` (its mapping table and the Greek final-sigma rule,
 *    written out by the import so they are the same as the Python's that made the fixture);
 * 2. tokens are the matches of `(?u)\b\w\w+\b`, that is maximal runs of at least two word
 *    characters (`\w` as Python's `re` defines it, also written out); English stop words are
 *    dropped, but none of them is in the vocabulary, so words outside it are simply ignored;
 * 3. term counts times idf, divided by their Euclidean norm (a text without a known word is the
 *    zero vector);
 * 4. per fold k: d = coef_k . x + intercept_k, p_k = 1 / (1 + exp(a_k d + b_k));
 * 5. the probability is the mean of p_k over the folds.
 *
 * Pure: no I/O, deterministic. The parameters are parsed once, on first use.
 */
import { PROFANITY_MODEL_JSON } from './profanity-model.data.js';

interface ProfanityModelJson {
  version: string;
  source: Record<string, string>;
  tokens: string;
  idf: number[];
  folds: { intercept: number; a: number; b: number; coef: number[] }[];
  wordChars: [number, number][];
  lower: [number, number[]][];
  cased: [number, number][];
  caseIgnorable: [number, number][];
}

/** A set of code points given as sorted, disjoint [first, last] ranges. */
class CodePointRanges {
  private readonly starts: Int32Array;
  private readonly ends: Int32Array;

  constructor(ranges: readonly [number, number][]) {
    this.starts = Int32Array.from(ranges, (r) => r[0]);
    this.ends = Int32Array.from(ranges, (r) => r[1]);
  }

  has(cp: number): boolean {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.starts[mid] as number) > cp) hi = mid - 1;
      else if ((this.ends[mid] as number) < cp) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

export interface ProfanityModel {
  version: string;
  /** Package, version, licence, authors, the wheel's SHA-256, scikit-learn and Unicode versions. */
  source: Readonly<Record<string, string>>;
  /** Vocabulary word -> feature index. */
  index: ReadonlyMap<string, number>;
  idf: Float64Array;
  /** Per fold: coefficients, intercept and the sigmoid calibration (a, b). */
  coef: Float64Array[];
  /** The same coefficients interleaved: feature i's coefficient of fold k at i * folds + k. */
  coefByFeature: Float64Array;
  intercept: Float64Array;
  a: Float64Array;
  b: Float64Array;
  /** Runs of at least two of Python's word characters (for text that is not plain ASCII). */
  wordRuns: RegExp;
  lower: ReadonlyMap<number, string>;
  cased: CodePointRanges;
  caseIgnorable: CodePointRanges;
}

function hex(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

export function parseProfanityModel(json: string): ProfanityModel {
  const m = JSON.parse(json) as ProfanityModelJson;
  const tokens = m.tokens.split(' ');
  if (tokens.length !== m.idf.length || m.folds.some((f) => f.coef.length !== tokens.length))
    throw new Error('profanity model: vocabulary, idf and coefficients differ in length');
  const folds = m.folds.length;
  const coefByFeature = new Float64Array(tokens.length * folds);
  for (let k = 0; k < folds; k++) {
    const coef = (m.folds[k] as ProfanityModelJson['folds'][number]).coef;
    for (let i = 0; i < coef.length; i++) coefByFeature[i * folds + k] = coef[i] as number;
  }
  const cls = m.wordChars.map(([a, b]) => (a === b ? hex(a) : `${hex(a)}-${hex(b)}`)).join('');
  return {
    version: m.version,
    source: m.source,
    index: new Map(tokens.map((t, i) => [t, i] as const)),
    idf: Float64Array.from(m.idf),
    coef: m.folds.map((f) => Float64Array.from(f.coef)),
    coefByFeature,
    intercept: Float64Array.from(m.folds, (f) => f.intercept),
    a: Float64Array.from(m.folds, (f) => f.a),
    b: Float64Array.from(m.folds, (f) => f.b),
    wordRuns: new RegExp(`[${cls}]{2,}`, 'gu'),
    lower: new Map(m.lower.map(([cp, to]) => [cp, String.fromCodePoint(...to)] as const)),
    cased: new CodePointRanges(m.cased),
    caseIgnorable: new CodePointRanges(m.caseIgnorable),
  };
}

let cached: ProfanityModel | undefined;

/** The shipped model (parsed once). */
export function profanityModel(): ProfanityModel {
  cached ??= parseProfanityModel(PROFANITY_MODEL_JSON);
  return cached;
}

const NOT_ASCII = /[^\x00-\x7f]/;
const ASCII_WORD_RUNS = /[0-9A-Za-z_]{2,}/g;
const CAPITAL_SIGMA = 0x3a3;

/** Python's `str.lower`: its table, and capital sigma by the Final_Sigma rule. */
export function pythonLower(text: string, model: ProfanityModel = profanityModel()): string {
  if (!NOT_ASCII.test(text)) return text.toLowerCase();
  const cps = Array.from(text, (ch) => ch.codePointAt(0) as number);
  let out = '';
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i] as number;
    if (cp < 0x80) out += cp >= 0x41 && cp <= 0x5a ? String.fromCharCode(cp + 32) : String.fromCharCode(cp);
    else if (cp === CAPITAL_SIGMA) out += finalSigma(cps, i, model) ? '\u03c2' : '\u03c3';
    else out += model.lower.get(cp) ?? String.fromCodePoint(cp);
  }
  return out;
}

/** Final_Sigma: a cased letter before (case-ignorable ones skipped) and none after. */
function finalSigma(cps: readonly number[], i: number, model: ProfanityModel): boolean {
  let j = i - 1;
  while (j >= 0 && model.caseIgnorable.has(cps[j] as number)) j--;
  if (j < 0 || !model.cased.has(cps[j] as number)) return false;
  j = i + 1;
  while (j < cps.length && model.caseIgnorable.has(cps[j] as number)) j++;
  return j === cps.length || !model.cased.has(cps[j] as number);
}

/** The vectorizer's tokens of a text (before stop words and the vocabulary are applied). */
export function profanityTokens(text: string, model: ProfanityModel = profanityModel()): string[] {
  const lowered = pythonLower(text, model);
  const re = NOT_ASCII.test(lowered) ? model.wordRuns : ASCII_WORD_RUNS;
  re.lastIndex = 0;
  return lowered.match(re) ?? [];
}

/** The vocabulary indices of a text's tokens, in order, repeats kept (unknown words dropped). */
export function profanityIndices(text: string, model: ProfanityModel = profanityModel()): number[] {
  const out: number[] = [];
  for (const t of profanityTokens(text, model)) {
    const i = model.index.get(t);
    if (i !== undefined) out.push(i);
  }
  return out;
}

/** Scratch space of profanityProbabilityOf (the indices sorted, the folds' dot products). */
let sorted = new Int32Array(64);
let dots = new Float64Array(8);

/**
 * The probability of the offensive class for a bag of vocabulary indices (repeats count). The
 * indices are sorted, so each feature's count is a run and the sums go in feature order, as in
 * scikit-learn's sparse product.
 */
export function profanityProbabilityOf(indices: readonly number[], model: ProfanityModel = profanityModel()): number {
  const n = indices.length;
  const folds = model.coef.length;
  if (sorted.length < n) sorted = new Int32Array(2 * n);
  if (dots.length < folds) dots = new Float64Array(folds);
  for (let i = 0; i < n; i++) {
    // Insertion sort: bags are short (a sentence or a window).
    const v = indices[i] as number;
    let j = i - 1;
    while (j >= 0 && (sorted[j] as number) > v) {
      sorted[j + 1] = sorted[j] as number;
      j--;
    }
    sorted[j + 1] = v;
  }
  const idf = model.idf;
  let norm2 = 0;
  for (let i = 0; i < n; ) {
    const f = sorted[i] as number;
    let j = i + 1;
    while (j < n && sorted[j] === f) j++;
    const v = (j - i) * (idf[f] as number);
    norm2 += v * v;
    i = j;
  }
  const norm = Math.sqrt(norm2);
  dots.fill(0);
  if (norm > 0) {
    const coef = model.coefByFeature;
    for (let i = 0; i < n; ) {
      const f = sorted[i] as number;
      let j = i + 1;
      while (j < n && sorted[j] === f) j++;
      const x = ((j - i) * (idf[f] as number)) / norm;
      for (let k = 0; k < folds; k++) dots[k] = (dots[k] as number) + x * (coef[f * folds + k] as number);
      i = j;
    }
  }
  let p = 0;
  for (let k = 0; k < folds; k++) {
    const z = (model.a[k] as number) * ((dots[k] as number) + (model.intercept[k] as number)) + (model.b[k] as number);
    p += z >= 0 ? Math.exp(-z) / (1 + Math.exp(-z)) : 1 / (1 + Math.exp(z));
  }
  return p / folds;
}

/** scikit-learn's `predict_proba(...)[:, 1]` of the package's model for one text. */
export function profanityProbability(text: string, model: ProfanityModel = profanityModel()): number {
  return profanityProbabilityOf(profanityIndices(text, model), model);
}
