/**
 * The offline toxicity model: logistic regression over word, word-pair and character n-gram
 * features, a few lexicon features and the probability of an imported model (alt-profanity-check,
 * see profanity-model.ts), trained by scripts/train-toxicity.ts, combined with the targeted-abuse
 * rules (targeted-abuse.ts). Pure: no I/O, deterministic; the weights are a generated data module
 * (toxicity-model.data.ts). The features are described and computed in toxicity-features.ts.
 *
 * A token's word and n-gram weights are summed once and cached, so a segment's logit is the sum
 * over its distinct tokens and word pairs plus the dense part.
 *
 * A text is scored part by part (sentences, lines, quoted pieces), each part also in windows of
 * WINDOW_WORDS tokens, and its score is the highest: a toxic sentence stays toxic whatever is
 * appended to it. The model's threshold, chosen on a tuning
 * split, is mapped to 0.5 (`offset`), so `score >= 0.5` is the flag.
 */
import { type TargetedAbuse, targetedAbuse } from './targeted-abuse.js';
import {
  DENSE_FEATURES,
  denseRange,
  lexInfo,
  MAX_TOKEN,
  PROFANITY_FEATURE,
  profanityReading,
  tokenFeatures,
  partProfanityIndices,
} from './toxicity-features.js';
import { HARM_VERBS } from './toxicity-lexicon.js';
import { TOXICITY_MODEL_JSON } from './toxicity-model.data.js';
import { neutraliseNamesAndMentions, own, tokensOfNeutralised } from './toxicity-text.js';

export interface ToxicityModel {
  version: string;
  bias: number;
  /** Threshold on the raw logit that maps to 0.5. */
  offset: number;
  weights: Record<string, number>;
  dense: Record<string, number>;
  /** Words of strongly negative valence (VADER, MIT) and their valence (negative numbers). */
  negative: Record<string, number>;
}

/** Longer parts are also scored in windows of this many tokens (half overlapping). */
export const WINDOW_WORDS = 8;

const PART_SPLIT = /(?<=[.!?])\s+|[\r\n]+|[{}[\]<>`"|]+/;

/**
 * Splits a text into the parts that are scored separately: sentences, lines and quoted or
 * bracketed pieces (JSON, markup, code). Each part is also scored in windows of WINDOW_WORDS
 * tokens, so text appended to a toxic sentence cannot dilute it.
 */
export function partsOf(text: string): string[] {
  const parts = neutraliseNamesAndMentions(text)
    .split(PART_SPLIT)
    .filter((s) => /[\p{L}\p{N}]/u.test(s));
  return parts.length ? parts : [text];
}

/**
 * The token ranges [from, to) scored within a part of `n` tokens: the whole part, its windows and
 * its shorter prefixes (up to WINDOW_WORDS - 1 tokens), and for the first part its shorter
 * suffixes. Text appended to a message either runs on from its last sentence or follows it as new
 * parts, after which that sentence is no longer the last: every part is therefore scored on its
 * prefixes, so its readings survive whatever is added after it (a short part's exactly, a longer
 * one's in its windows and prefixes). Text put before a message runs into its first part, hence
 * the suffixes.
 */
export function windowsOf(n: number, edges: { prefixes?: boolean; suffixes?: boolean } = {}): [number, number][] {
  const out: [number, number][] = [[0, n]];
  if (n > WINDOW_WORDS) for (let i = 0; i + WINDOW_WORDS / 2 < n; i += WINDOW_WORDS / 2) out.push([i, Math.min(n, i + WINDOW_WORDS)]);
  for (let k = 1; k < Math.min(n, WINDOW_WORDS); k++) {
    if (edges.prefixes) out.push([0, k]);
    if (edges.suffixes) out.push([n - k, n]);
  }
  return out;
}

/** Words that open a noun phrase. */
export const PHRASE_OPENERS = new Set([
  'the',
  'a',
  'an',
  'your',
  'ur',
  'my',
  'his',
  'their',
  'our',
  'its',
  'this',
  'these',
  'those',
  'every',
]);

/**
 * The windows of a part that are read: windowsOf's, less those that end inside the part where a
 * phrase goes on: on a word that opens a noun phrase ("kill the | process") or on a harm verb whose
 * object follows ("how do I kill | a thread"). Such a reading says what the text does not; the
 * phrase is read whole in the longer windows.
 */
function readWindows(tokens: readonly string[], edges: { prefixes?: boolean; suffixes?: boolean }): [number, number][] {
  return windowsOf(tokens.length, edges).filter(([, b]) => {
    if (b >= tokens.length) return true;
    const last = tokens[b - 1] as string;
    return !PHRASE_OPENERS.has(last) && !(own(HARM_VERBS, last) !== undefined && PHRASE_OPENERS.has(tokens[b] as string));
  });
}

/** The segments of a text as strings (parts and windows), for reports and tests. */
export function segmentsOf(text: string): string[] {
  const out: string[] = [];
  const parts = partsOf(text);
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p] as string;
    const tokens = tokensOfNeutralised(part);
    if (tokens.length === 0) continue;
    for (const [a, b] of readWindows(tokens, { suffixes: p === 0, prefixes: true }))
      out.push(a === 0 && b === tokens.length ? part : tokens.slice(a, b).join(' '));
  }
  return out.length ? out : [text];
}

let cached: ToxicityModel | undefined;

/** The shipped model (parsed once). */
export function toxicityModel(): ToxicityModel {
  cached ??= JSON.parse(TOXICITY_MODEL_JSON) as ToxicityModel;
  return cached;
}

/** The sparse weights of a model as a Map (built once per model: faster to look up than the object). */
const WEIGHT_MAPS = new WeakMap<ToxicityModel, Map<string, number>>();

function weightMap(model: ToxicityModel): Map<string, number> {
  let m = WEIGHT_MAPS.get(model);
  if (!m) {
    m = new Map(Object.entries(model.weights));
    WEIGHT_MAPS.set(model, m);
  }
  return m;
}

/** Per-model cache of a token's summed word and character n-gram weights (bounded). */
const TOKEN_SCORES = new WeakMap<ToxicityModel, Map<string, number>>();
const TOKEN_SCORE_CACHE_MAX = 100_000;

function tokenScore(model: ToxicityModel, token: string): number {
  let m = TOKEN_SCORES.get(model);
  if (!m) {
    m = new Map();
    TOKEN_SCORES.set(model, m);
  }
  let v = m.get(token);
  if (v === undefined) {
    v = 0;
    const w = weightMap(model);
    for (const f of tokenFeatures(token)) v += w.get(f) ?? 0;
    if (m.size >= TOKEN_SCORE_CACHE_MAX) m.clear();
    m.set(token, v);
  }
  return v;
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

export interface SegmentReading {
  /** The model's raw logit. */
  logit: number;
  abuse: TargetedAbuse;
  /** The imported model's probability for the segment (0 when the model does not read it). */
  profanity: number;
}

/** One scored stretch of a text: a part or a window of it. */
export interface Segment {
  /** The part (sentence, line or quoted piece) the segment lies in. */
  part: string;
  /** Its tokens. */
  tokens: readonly string[];
  /** Whether it is the whole part (else a window of it). */
  whole: boolean;
  reading: SegmentReading;
}

/** The text of a segment: its part, or a window's tokens. */
export function segmentText(s: Segment): string {
  return s.whole ? s.part : s.tokens.join(' ');
}

/** The weights of DENSE_FEATURES, in that order (per model, built once). */
const DENSE_WEIGHTS = new WeakMap<ToxicityModel, Float64Array>();

function denseWeights(model: ToxicityModel): Float64Array {
  let w = DENSE_WEIGHTS.get(model);
  if (!w) {
    w = Float64Array.from(DENSE_FEATURES, (k) => own(model.dense, k) ?? 0);
    DENSE_WEIGHTS.set(model, w);
  }
  return w;
}

/** For each position, the last earlier position holding the same string, or -1. */
function previousOccurrences(xs: readonly string[]): Int32Array {
  const out = new Int32Array(xs.length);
  const last = new Map<string, number>();
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as string;
    out[i] = last.get(x) ?? -1;
    last.set(x, i);
  }
  return out;
}

/**
 * Reads each part and window of a text (parts without letters are skipped) and hands each reading
 * to `visit` with the part, its tokens and the window [a, b).
 */
function readSegments(
  text: string,
  model: ToxicityModel,
  visit: (part: string, all: readonly string[], a: number, b: number, reading: SegmentReading) => void,
): void {
  const parts = partsOf(text);
  const weights = weightMap(model);
  const dw = denseWeights(model);
  const dense = new Float64Array(DENSE_FEATURES.length);
  const wp = own(model.dense, PROFANITY_FEATURE) ?? 0;
  const idx: number[] = [];
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p] as string;
    const all = tokensOfNeutralised(part);
    if (all.length === 0) continue;
    // Token and word-pair weights are looked up once per part; each window sums its own.
    const ts = all.map((t) => tokenScore(model, t));
    const infos = all.map((t) => lexInfo(t, model.negative));
    const bk: string[] = [];
    const bw: number[] = [];
    for (let i = 0; i + 1 < all.length; i++) {
      bk.push(`b:${(all[i] as string).slice(0, MAX_TOKEN)} ${(all[i + 1] as string).slice(0, MAX_TOKEN)}`);
      bw.push(weights.get(bk[i] as string) ?? 0);
    }
    // The targeted-abuse rules look at a few neighbouring tokens only, so they are read once per
    // part, and what they find in a part holds for each of its windows.
    const abuse = targetedAbuse(all, model.negative);
    // The imported model reads each segment's normalised tokens.
    const pi = wp === 0 ? [] : partProfanityIndices(all);
    // A window counts each distinct token and word pair once: at the first position in the window
    // that is not preceded by the same token (pair) inside the window.
    const prevTok = previousOccurrences(all);
    const prevPair = previousOccurrences(bk);
    for (const [a, b] of readWindows(all, { suffixes: p === 0, prefixes: true })) {
      let z = model.bias;
      for (let i = a; i < b; i++) if ((prevTok[i] as number) < a) z += ts[i] as number;
      for (let i = a; i + 1 < b; i++) if ((prevPair[i] as number) < a) z += bw[i] as number;
      denseRange(all, infos, a, b, dense);
      for (let k = 0; k < DENSE_FEATURES.length; k++) z += (dw[k] as number) * (dense[k] as number);
      let profanity = 0;
      if (wp !== 0) {
        idx.length = 0;
        for (let i = a; i < b; i++) for (const j of pi[i] as readonly number[]) idx.push(j);
        const r = profanityReading(idx);
        profanity = r.p;
        z += wp * r.feature;
      }
      visit(part, all, a, b, { logit: z, abuse, profanity });
    }
  }
}

/** The raw readings of each part and window of a text (parts without letters are skipped). */
export function segmentReadings(text: string, model: ToxicityModel = toxicityModel()): Segment[] {
  const out: Segment[] = [];
  readSegments(text, model, (part, all, a, b, reading) => {
    const whole = a === 0 && b === all.length;
    out.push({ part, tokens: whole ? all : all.slice(a, b), whole, reading });
  });
  return out;
}

/** Combined score of one segment: the model (calibrated by `offset`) or the targeted-abuse rules. */
export function combine(r: SegmentReading, offset: number): number {
  const p = sigmoid(r.logit - offset);
  return 1 - (1 - p) * (1 - r.abuse.score);
}

export interface ToxicityModelScore {
  /** Calibrated score; >= 0.5 is the flag. */
  score: number;
  /** The model's part of the score, and the targeted-abuse part, in the worst segment. */
  model: number;
  abuse: TargetedAbuse;
  /** The imported model's probability for the worst segment. */
  profanity: number;
  /** The segment that scored highest. */
  worst: string;
  /** The tokens of the whole text, part after part (for the lexicon category scores). */
  tokens: string[];
}

/** Scores a text: the highest combined score over its parts and windows. */
export function scoreToxicityText(text: string, model: ToxicityModel = toxicityModel()): ToxicityModelScore {
  const tokens: string[] = [];
  let best: ToxicityModelScore = { score: 0, model: 0, abuse: { score: 0, kind: 'none' }, profanity: 0, worst: '', tokens };
  let worst = '';
  readSegments(text, model, (part, all, a, b, reading) => {
    const whole = a === 0 && b === all.length;
    if (whole) for (const t of all) tokens.push(t);
    const score = combine(reading, model.offset);
    if (score > best.score) {
      best = { score, model: sigmoid(reading.logit - model.offset), abuse: reading.abuse, profanity: reading.profanity, worst: '', tokens };
      worst = whole ? part : all.slice(a, b).join(' ');
    }
  });
  return { ...best, worst };
}
