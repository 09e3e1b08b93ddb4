/**
 * The offline toxicity model: logistic regression over word, word-pair and character n-gram
 * features, a few lexicon features and the probability of an imported model (alt-profanity-check,
 * see profanity-model.ts), trained by scripts/train-toxicity.ts. Pure: no I/O, deterministic; the
 * weights are a generated data module (toxicity-model.data.ts).
 *
 * Features of a text (after normalizeForToxicity):
 * - `w:<token>`, `b:<token> <token>` (adjacent pairs), `c:<n-gram>` (character 3- to 5-grams of
 *   each token with ^ and $ marking its edges): binary;
 * - dense lexicon features in [0, 1]: `prof`, `hate`, `viol` (the lexicon category scores),
 *   `neg` (amount of strongly negative words, VADER valence), `negPerson` (a negative word next to
 *   a person: "you", "he", "they", "people", ...), `violPerson` (violent word next to a person),
 *   `you` (the text addresses someone);
 * - `altProfanity`: the log-odds of alt-profanity-check's probability (clipped to [1e-4, 1 - 1e-4])
 *   divided by 4, read on the segment's normalised tokens (so it sees "b!tch" as "bitch"; a token
 *   it does not know is read with doubled letters made single, "fuuck" as "fuck", or as the listed
 *   word it contains, "fuckmondays" as "fuck"; a masked one, "f*ck", as the listed word it matches). That model was trained by others on about 200,000
 *   texts, among them all of the Davidson et al. tweets and Jigsaw comments this project also uses.
 *
 * A token's word and n-gram weights are summed once and cached, so a segment's logit is the sum
 * over its distinct tokens and word pairs plus the dense part.
 *
 * A text is scored part by part (sentences, lines, quoted pieces), each part also in windows of
 * WINDOW_WORDS tokens, and its score is the highest: a toxic sentence stays toxic whatever is
 * appended to it. The model's threshold, chosen on a tuning
 * split, is mapped to 0.5 (`offset`), so `score >= 0.5` is the flag.
 */
import { HARM_VERBS, HATE_SPEECH, INSULTS, type LexiconCategory, PROFANITY, VIOLENCE } from './toxicity-lexicon.js';
import { profanityIndices, profanityProbabilityOf } from './profanity-model.js';
import { TOXICITY_MODEL_JSON } from './toxicity-model.data.js';
import { normalizeForToxicity, own, phraseStarts, scoreCategory, squeeze, tokenHit } from './toxicity-text.js';

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

export const DENSE_FEATURES = ['prof', 'hate', 'viol', 'neg', 'negPerson', 'violPerson', 'you'] as const;
export type DenseFeature = (typeof DENSE_FEATURES)[number];

/** The dense weight of the imported model's feature (absent or 0: the imported model is not read). */
export const PROFANITY_FEATURE = 'altProfanity';

/** The imported model's probability as a feature: its log-odds, clipped at 1e-4, over 4. */
export function profanityFeature(p: number): number {
  const q = Math.min(1 - 1e-4, Math.max(1e-4, p));
  return Math.log(q / (1 - q)) / 4;
}

/**
 * The imported model's reading of a bag of its vocabulary indices: its probability, and the
 * feature, which is 0 when the segment has no word the model knows (no evidence either way: the
 * model would give every such text its base rate, 0.04, and read as confidently clean).
 */
export function profanityReading(indices: readonly number[]): { p: number; feature: number } {
  const p = profanityProbabilityOf(indices);
  return { p, feature: indices.length ? profanityFeature(p) : 0 };
}

/**
 * The imported model's vocabulary indices of one normalised token (memoised): a masked token
 * ("f*ck") as the profanity or hate-speech word it matches; else the token as it is; a token the
 * model does not know with its doubled letters made single ("fuuck"), else as the profanity or
 * hate-speech word or stem the lexicon finds in it ("fuckmondays").
 */
const TOKEN_PROFANITY = new Map<string, readonly number[]>();

function tokenProfanityIndices(token: string): readonly number[] {
  let v = TOKEN_PROFANITY.get(token);
  if (v === undefined) {
    const listed = () => tokenHit(token, PROFANITY) ?? tokenHit(token, HATE_SPEECH);
    if (token.includes('*')) {
      const hit = listed();
      v = hit ? profanityIndices(hit.entry) : [];
    } else {
      v = profanityIndices(token);
      const single = squeeze(token, 1);
      if (v.length === 0 && single !== token) v = profanityIndices(single);
      if (v.length === 0) {
        const hit = listed();
        if (hit) v = profanityIndices(hit.entry);
      }
    }
    if (TOKEN_PROFANITY.size >= 100_000) TOKEN_PROFANITY.clear();
    TOKEN_PROFANITY.set(token, v);
  }
  return v;
}

/** The imported model's reading of a run of normalised tokens (see tokenProfanityIndices). */
export function tokensProfanity(tokens: readonly string[]): { p: number; feature: number } {
  const idx: number[] = [];
  for (const t of tokens) for (const i of tokenProfanityIndices(t)) idx.push(i);
  return profanityReading(idx);
}

const SECOND_PERSON = new Set(['you', 'u', 'ur', 'youre', 'yourself', 'yourselves', 'ya', 'yall', 'your', 'thee']);
const PERSON = new Set([
  ...SECOND_PERSON,
  'he',
  'she',
  'him',
  'her',
  'his',
  'hes',
  'shes',
  'they',
  'them',
  'theyre',
  'their',
  'people',
  'ppl',
  'guy',
  'guys',
  'girl',
  'girls',
  'boy',
  'boys',
  'man',
  'men',
  'woman',
  'women',
  'folks',
  'everyone',
  'everybody',
  'somebody',
  'someone',
  'person',
  'persons',
  'kid',
  'kids',
  'dude',
  'bro',
  'bitch',
  'bitches',
  'idiot',
  'idiots',
  'liberals',
  'conservatives',
  'muslims',
  'muslim',
  'jews',
  'jew',
  'blacks',
  'whites',
  'gays',
  'gay',
  'immigrants',
  'immigrant',
  'trans',
  'mexicans',
  'christians',
  'women',
  'females',
  'males',
  'refugees',
  'foreigners',
  'niggas',
  'niggers',
  'hoes',
  'these',
  'those',
]);

/** What the dense features need to know of one token (memoised per negative-word table). */
export interface LexInfo {
  prof: { entry: string; weight: number } | null;
  hate: { entry: string; weight: number } | null;
  viol: { entry: string; weight: number } | null;
  /** Bit set: the token starts a phrase of profanity (1), hate speech (2), violence (4). */
  starts: number;
  /** Negative valence at or below -1.5, else undefined. */
  neg: number | undefined;
  violWord: number | undefined;
  person: boolean;
  you: boolean;
}

const LEX_INFO = new WeakMap<object, Map<string, LexInfo>>();

function lexInfo(t: string, negative: Readonly<Record<string, number>>): LexInfo {
  let m = LEX_INFO.get(negative);
  if (!m) {
    m = new Map();
    LEX_INFO.set(negative, m);
  }
  let info = m.get(t);
  if (!info) {
    const v = own(negative, t);
    info = {
      prof: tokenHit(t, PROFANITY),
      hate: tokenHit(t, HATE_SPEECH),
      viol: tokenHit(t, VIOLENCE),
      starts:
        (phraseStarts(PROFANITY).has(t) ? 1 : 0) | (phraseStarts(HATE_SPEECH).has(t) ? 2 : 0) | (phraseStarts(VIOLENCE).has(t) ? 4 : 0),
      neg: v !== undefined && v <= -1.5 ? v : undefined,
      violWord: own(VIOLENCE.words, t),
      person: PERSON.has(t),
      you: SECOND_PERSON.has(t),
    };
    if (m.size >= 100_000) m.clear();
    m.set(t, info);
  }
  return info;
}

/** A category score from the hits of tokens[a, b), the same as scoreCategory's (phrases read only where one may start). */
function categoryScore(
  tokens: readonly string[],
  infos: readonly LexInfo[],
  a: number,
  b: number,
  key: 'prof' | 'hate' | 'viol',
  bit: number,
  cat: LexiconCategory,
): number {
  let counts: Map<string, { n: number; w: number }> | undefined;
  let start = false;
  for (let i = a; i < b; i++) {
    const info = infos[i] as LexInfo;
    const hit = info[key];
    if (hit) {
      counts ??= new Map();
      const c = counts.get(hit.entry);
      if (c) c.n++;
      else counts.set(hit.entry, { n: 1, w: hit.weight });
    }
    if (info.starts & bit) start = true;
  }
  if (start) return scoreCategory(a === 0 && b === tokens.length ? tokens : tokens.slice(a, b), cat).score;
  if (!counts) return 0;
  let keep = 1;
  for (const { n, w } of counts.values()) keep *= (1 - w) ** Math.min(n, 2);
  return 1 - keep;
}

/** Whether a person word stands within three tokens of token i, inside [a, b). */
function nearPerson(infos: readonly LexInfo[], i: number, a: number, b: number): boolean {
  for (let j = Math.max(a, i - 3); j <= Math.min(b - 1, i + 3); j++) if (j !== i && (infos[j] as LexInfo).person) return true;
  return false;
}

/** The dense features of tokens[a, b) into `out`, in the order of DENSE_FEATURES. */
function denseRange(tokens: readonly string[], infos: readonly LexInfo[], a: number, b: number, out: Float64Array): void {
  const prof = categoryScore(tokens, infos, a, b, 'prof', 1, PROFANITY);
  const hate = categoryScore(tokens, infos, a, b, 'hate', 2, HATE_SPEECH);
  const viol = categoryScore(tokens, infos, a, b, 'viol', 4, VIOLENCE);
  let negSum = 0;
  let negPerson = 0;
  let violPerson = 0;
  let you = 0;
  for (let i = a; i < b; i++) {
    const info = infos[i] as LexInfo;
    if (info.you) you = 1;
    const v = info.neg;
    if (v !== undefined) {
      negSum += -v - 1;
      if (nearPerson(infos, i, a, b)) negPerson = Math.max(negPerson, Math.min(1, -v / 3.5));
    }
    const vw = viol > 0 ? info.violWord : undefined;
    if (vw !== undefined && nearPerson(infos, i, a, b)) violPerson = Math.max(violPerson, vw);
  }
  out[0] = prof;
  out[1] = hate;
  out[2] = viol;
  out[3] = 1 - Math.exp(-negSum / 2);
  out[4] = negPerson;
  out[5] = violPerson;
  out[6] = you;
}

/** Dense lexicon features of one token sequence (each in [0, 1]). */
export function denseFeatures(
  tokens: readonly string[],
  negative: Readonly<Record<string, number>>,
  known?: readonly LexInfo[],
): Record<DenseFeature, number> {
  const infos = known ?? tokens.map((t) => lexInfo(t, negative));
  const d = new Float64Array(DENSE_FEATURES.length);
  denseRange(tokens, infos, 0, tokens.length, d);
  return Object.fromEntries(DENSE_FEATURES.map((k, i) => [k, d[i] as number])) as Record<DenseFeature, number>;
}

/** Tokens longer than this are cut for the model's features. */
const MAX_TOKEN = 24;

/** The word and character n-gram features of one token: `w:<token>` and `c:<3- to 5-gram of ^token$>`. */
export function tokenFeatures(token: string): string[] {
  const t = token.slice(0, MAX_TOKEN);
  const out = [`w:${t}`];
  if (t.length >= 2) {
    const s = `^${t}$`;
    for (let n = 3; n <= 5; n++) for (let k = 0; k + n <= s.length; k++) out.push(`c:${s.slice(k, k + n)}`);
  }
  return out;
}

/**
 * The sparse features of one token sequence as the model counts them: the features of each
 * distinct token (a character n-gram shared by two distinct tokens counts twice) and each distinct
 * adjacent pair `b:<token> <token>`. The logit is the sum of their weights, so a token's part can
 * be computed once and cached.
 */
export function sparseFeatures(tokens: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const t of tokens) {
    if (seen.has(t)) continue;
    seen.add(t);
    for (const f of tokenFeatures(t)) out.push(f);
  }
  const pairs = new Set<string>();
  for (let i = 0; i + 1 < tokens.length; i++)
    pairs.add(`b:${(tokens[i] as string).slice(0, MAX_TOKEN)} ${(tokens[i + 1] as string).slice(0, MAX_TOKEN)}`);
  for (const b of pairs) out.push(b);
  return out;
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
  const parts = text.split(PART_SPLIT).filter((s) => /[\p{L}\p{N}]/u.test(s));
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

/** The segments of a text as strings (parts and windows), for reports and tests. */
export function segmentsOf(text: string): string[] {
  const out: string[] = [];
  const parts = partsOf(text);
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p] as string;
    const tokens = normalizeForToxicity(part);
    if (tokens.length === 0) continue;
    for (const [a, b] of windowsOf(tokens.length, { suffixes: p === 0, prefixes: true }))
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

/** Raw logit of one token sequence under `model` (the same sum as over sparseFeatures). */
export function logitOf(tokens: readonly string[], model: ToxicityModel): number {
  let z = model.bias;
  const seen = new Set<string>();
  for (const t of tokens) {
    if (seen.has(t)) continue;
    seen.add(t);
    z += tokenScore(model, t);
  }
  const weights = weightMap(model);
  const pairs = new Set<string>();
  for (let i = 0; i + 1 < tokens.length; i++) {
    const b = `b:${(tokens[i] as string).slice(0, MAX_TOKEN)} ${(tokens[i + 1] as string).slice(0, MAX_TOKEN)}`;
    if (pairs.has(b)) continue;
    pairs.add(b);
    z += weights.get(b) ?? 0;
  }
  const d = denseFeatures(tokens, model.negative);
  for (const k of DENSE_FEATURES) z += (own(model.dense, k) ?? 0) * d[k];
  const wp = own(model.dense, PROFANITY_FEATURE) ?? 0;
  if (wp !== 0) z += wp * tokensProfanity(tokens).feature;
  return z;
}

function sigmoid(z: number): number {
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
    const all = normalizeForToxicity(part);
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
    const pi = wp === 0 ? [] : all.map(tokenProfanityIndices);
    // A window counts each distinct token and word pair once: at the first position in the window
    // that is not preceded by the same token (pair) inside the window.
    const prevTok = previousOccurrences(all);
    const prevPair = previousOccurrences(bk);
    for (const [a, b] of windowsOf(all.length, { suffixes: p === 0, prefixes: true })) {
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

// ---------------------------------------------------------------------------------------------
// Targeted abuse: insults, hatred and threats aimed at a person or a group
// ---------------------------------------------------------------------------------------------

const TARGET_YOU = new Set(['you', 'u', 'ya', 'yall', 'youre', 'ur', 'thou', 'yourself', 'yourselves']);
/** Groups of people named as such (identity, politics, generic). */
const GROUPS = new Set([
  'people',
  'ppl',
  'guys',
  'women',
  'men',
  'girls',
  'boys',
  'muslims',
  'jews',
  'blacks',
  'whites',
  'gays',
  'lesbians',
  'immigrants',
  'migrants',
  'refugees',
  'foreigners',
  'mexicans',
  'arabs',
  'asians',
  'africans',
  'christians',
  'atheists',
  'liberals',
  'conservatives',
  'democrats',
  'republicans',
  'leftists',
  'feminists',
  'females',
  'males',
  'trans',
  'transgenders',
  'homosexuals',
  'queers',
  'disabled',
  'poor',
  'elderly',
  'politicians',
  'cops',
  'police',
  'teachers',
  'fans',
  'voters',
  'supporters',
  'idiots',
]);
const TARGET_OTHER = new Set([
  'he',
  'she',
  'hes',
  'shes',
  'they',
  'theyre',
  'him',
  'her',
  'them',
  'guy',
  'dude',
  'bro',
  'man',
  'woman',
  'person',
  ...GROUPS,
]);
const COPULA = new Set([
  'are',
  'r',
  're',
  'is',
  's',
  'am',
  'm',
  'be',
  'being',
  'been',
  'was',
  'were',
  'look',
  'looks',
  'sound',
  'sounds',
  'seem',
  'seems',
  'act',
  'acting',
  'become',
  'remain',
  'stay',
]);
const FUSED_TARGET_COPULA = new Set(['youre', 'ur', 'hes', 'shes', 'theyre', 'yall']);
const NEGATORS = new Set([
  'not',
  'never',
  'no',
  't',
  'nt',
  'isnt',
  'arent',
  'dont',
  'doesnt',
  'wasnt',
  'werent',
  'cant',
  'nobody',
  'neither',
  'nor',
  'without',
]);
const SPEAKER_CUES = new Set([
  'i',
  'ill',
  'im',
  'we',
  'well',
  'gonna',
  'going',
  'will',
  'll',
  'shall',
  'should',
  'must',
  'ought',
  'deserve',
  'deserves',
  'hope',
  'wish',
  'want',
  'wanna',
  'lets',
  'let',
  'somebody',
  'someone',
  'gotta',
  'gon',
  'need',
  'needs',
  'better',
  'would',
  'd',
]);
const HATE_VERBS = new Set(['hate', 'despise', 'detest', 'loathe', 'abhor']);
const HATE_NOUNS = new Set(['hatred', 'contempt', 'disdain', 'scorn', 'loathing']);
const ANGER_WORDS = new Set(['sick', 'furious', 'angry', 'mad', 'puke', 'vomit', 'disgusted']);
const OBJECT_PRONOUNS = new Set(['you', 'u', 'ya', 'him', 'her', 'them', 'his', 'their', 'your', 'yourself']);

/** Letters of a word in sorted order: the key under which transposed spellings ("klil", "deaht") meet. */
function anagramKey(w: string): string {
  return [...w].sort().join('');
}
const ANAGRAMS = new Map<string, string>();
for (const w of [...Object.keys(INSULTS), ...Object.keys(HARM_VERBS)]) if (w.length >= 4) ANAGRAMS.set(`${w[0]}:${anagramKey(w)}`, w);

/** The listed insult or harm word a token spells with two letters swapped ("suffre" -> "suffer"), if any. */
const UNSCRAMBLED = new Map<string, string>();

export function unscramble(tok: string): string {
  let u = UNSCRAMBLED.get(tok);
  if (u === undefined) {
    u = unscrambleUncached(tok);
    if (UNSCRAMBLED.size >= 100_000) UNSCRAMBLED.clear();
    UNSCRAMBLED.set(tok, u);
  }
  return u;
}

function unscrambleUncached(tok: string): string {
  if (tok.length < 4 || own(INSULTS, tok) !== undefined || own(HARM_VERBS, tok) !== undefined) return tok;
  const w = ANAGRAMS.get(`${tok[0]}:${anagramKey(tok)}`);
  if (w === undefined) return tok;
  let diff = 0;
  for (let i = 0; i < tok.length; i++) if (tok[i] !== w[i]) diff++;
  return diff === 2 ? w : tok;
}
/** Negative words that describe a state or misfortune rather than insult ("you are sick", "he is dead"). */
const STATE_WORDS = new Set([
  'sad',
  'sick',
  'ill',
  'tired',
  'sorry',
  'hurt',
  'injured',
  'wounded',
  'dead',
  'died',
  'killed',
  'lost',
  'alone',
  'lonely',
  'afraid',
  'scared',
  'upset',
  'worried',
  'guilty',
  'confused',
  'stressed',
  'depressed',
  'anxious',
  'broke',
  'wrong',
  'mistaken',
  'disappointed',
  'bored',
  'angry',
  'mad',
  'jealous',
  'embarrassed',
  'ashamed',
  'unhappy',
  'miserable',
  'pain',
  'painful',
  'dying',
  'death',
  'fear',
  'terrified',
  'frustrated',
  'hungry',
  'homeless',
  'unemployed',
  'victim',
  'victims',
  'blind',
  'deaf',
  'crying',
  'grief',
  'tragic',
  'cancer',
  'risk',
  'danger',
  'dangerous',
  'damage',
  'problem',
  'problems',
  'crisis',
  'war',
  'poverty',
  'illness',
  'disease',
  'trouble',
  'difficult',
  'hard',
  'worse',
  'worst',
  'bad',
  'stress',
  'alarm',
  'warning',
  'penalty',
  'debt',
  'fail',
  'failed',
  'fails',
  'lose',
  'losing',
  'lonely',
  'heartbroken',
]);
const THREAT_PHRASES: readonly [string, number][] = [
  ['kill yourself', 1],
  ['kys', 1],
  ['go die', 0.95],
  ['hope you die', 1],
  ['you re dead', 0.9],
  ['youre dead', 0.9],
  ['watch your back', 0.85],
  ['know where you live', 0.9],
  ['coming for you', 0.8],
  ['find you and', 0.85],
  ['break your', 0.85],
  ['bullet in', 0.9],
  ['put you in the ground', 0.95],
  ['end your life', 0.95],
  ['end his life', 0.95],
  ['make you suffer', 0.95],
  ['snap your neck', 0.95],
  ['slit your throat', 1],
  ['beat the crap out', 0.9],
  ['beat the shit out', 0.9],
  ['kick your ass', 0.85],
  ['cut your throat', 1],
  ['drink bleach', 0.9],
];

const THREAT_STARTS = new Set(THREAT_PHRASES.map(([p]) => p.split(' ')[0] as string));

export interface TargetedAbuse {
  score: number;
  kind: 'insult' | 'group insult' | 'hatred' | 'threat' | 'none';
}

/** Strength of a word as an insult (0 when it is none): the insult list, else strong VADER negativity. */
function insultStrength(tok: string, negative: Readonly<Record<string, number>>): number {
  const i = own(INSULTS, tok);
  if (i !== undefined) return i;
  if (STATE_WORDS.has(tok)) return 0;
  const v = own(negative, tok);
  return v !== undefined && v <= -1.8 ? Math.min(0.9, -v / 3.2) : 0;
}

function isPerson(t: string | undefined): boolean {
  return t !== undefined && (TARGET_YOU.has(t) || TARGET_OTHER.has(t));
}

function negatedBetween(tokens: readonly string[], from: number, to: number): boolean {
  for (let k = Math.max(0, from); k < to; k++) if (NEGATORS.has(tokens[k] as string)) return true;
  return false;
}

/**
 * Insults said of someone ("you are a ...", "they are so ...", "you idiot", "what a loser you
 * are", "losers like you"), hatred declared at someone ("I hate you", "I can't stand them") and
 * threats ("I will hurt you", "they should all be shot", "kill yourself"). A negation between the
 * target and the word ("you are not stupid", "I don't hate you") cancels it. Pure.
 */
export function targetedAbuse(input: readonly string[], negative: Readonly<Record<string, number>>): TargetedAbuse {
  let best: TargetedAbuse = { score: 0, kind: 'none' };
  let tokens = input;
  const take = (score: number, kind: TargetedAbuse['kind']) => {
    if (score > best.score) best = { score, kind };
  };
  tokens = tokens.map(unscramble);
  if (tokens.some((t) => THREAT_STARTS.has(t))) {
    const joined = ` ${tokens.join(' ')} `;
    for (const [phrase, w] of THREAT_PHRASES) if (joined.includes(` ${phrase} `)) take(w, 'threat');
  }
  const hasYou = tokens.some((t) => TARGET_YOU.has(t));
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] as string;
    const strength = insultStrength(tok, negative);
    if (strength > 0) {
      // "<target> <copula> ... <insult>" within five tokens, or a fused "youre/hes ... <insult>".
      for (let j = i - 1; j >= Math.max(0, i - 5); j--) {
        const t = tokens[j] as string;
        const cop = COPULA.has(t) && j > 0 && (TARGET_YOU.has(tokens[j - 1] as string) || TARGET_OTHER.has(tokens[j - 1] as string));
        const fused = FUSED_TARGET_COPULA.has(t);
        if (!cop && !fused) continue;
        const target = fused ? t : (tokens[j - 1] as string);
        if (negatedBetween(tokens, j, i)) break;
        const you = TARGET_YOU.has(target);
        take(you ? strength : 0.9 * strength, you || !GROUPS.has(target) ? 'insult' : 'group insult');
        break;
      }
      // Vocative: "you idiot", "you absolute moron".
      if (own(INSULTS, tok) !== undefined) {
        for (let j = i - 1; j >= Math.max(0, i - 2); j--)
          if (TARGET_YOU.has(tokens[j] as string) && !COPULA.has(tokens[j + 1] as string)) take(strength, 'insult');
      }
      // "what a loser you are", "such a creep": exclamations about someone addressed.
      if (
        hasYou &&
        i >= 2 &&
        (tokens[i - 2] === 'what' || tokens[i - 2] === 'such' || tokens[i - 1] === 'such') &&
        !negatedBetween(tokens, i - 3, i)
      )
        take(strength, 'insult');
      // "<insult> like you/them".
      if (tokens[i + 1] === 'like' && (TARGET_YOU.has(tokens[i + 2] as string) || TARGET_OTHER.has(tokens[i + 2] as string)))
        take(strength, 'insult');
    }
    // Hatred declared at someone: "I hate you", "we despise them", "I can't stand her".
    const hateVerb =
      HATE_VERBS.has(tok) ||
      (tok === 'stand' && (tokens[i - 1] === 't' || tokens[i - 1] === 'cant') && (tokens[i - 2] === 'can' || tokens[i - 1] === 'cant'));
    if (hateVerb) {
      const subj = tokens.slice(Math.max(0, i - 4), i).some((t) => t === 'i' || t === 'we');
      const obj = tokens.slice(i + 1, i + 4).some((t) => TARGET_YOU.has(t) || TARGET_OTHER.has(t));
      const neg = tok === 'stand' ? negatedBetween(tokens, i - 5, i - 2) : negatedBetween(tokens, i - 3, i);
      if (subj && obj && !neg) take(0.85, 'hatred');
    }
    // "you make me sick", "these people disgust me", "hatred for you", "contempt for them".
    if (
      ANGER_WORDS.has(tok) &&
      tokens[i - 1] === 'me' &&
      /^make|^made/.test(tokens[i - 2] ?? '') &&
      tokens.slice(Math.max(0, i - 6), i - 2).some(isPerson)
    )
      take(0.8, 'hatred');
    if ((tok === 'disgust' || tok === 'disgusts') && tokens[i + 1] === 'me' && tokens.slice(Math.max(0, i - 3), i).some(isPerson))
      take(0.8, 'hatred');
    if (HATE_NOUNS.has(tok) && tokens[i + 1] === 'for' && tokens.slice(i + 2, i + 5).some(isPerson) && !negatedBetween(tokens, i - 3, i))
      take(0.8, 'hatred');
    // Threats: a harm verb with a person as object and a speaker cue before it ("I will hurt
    // you"), or a person, then a cue, then the verb ("they should all be shot", "you deserve to die").
    const harm = own(HARM_VERBS, tok);
    if (harm !== undefined) {
      const objAfter = tokens.slice(i + 1, i + 4).some((t) => TARGET_YOU.has(t) || TARGET_OTHER.has(t) || OBJECT_PRONOUNS.has(t));
      const cueBefore = tokens.slice(Math.max(0, i - 5), i).some((t) => SPEAKER_CUES.has(t));
      if (objAfter && cueBefore && !negatedBetween(tokens, i - 4, i)) take(harm, 'threat');
      for (let j = i - 1; j >= Math.max(0, i - 6); j--) {
        const t = tokens[j] as string;
        if (!(TARGET_YOU.has(t) || TARGET_OTHER.has(t))) continue;
        const between = tokens.slice(j + 1, i);
        if (between.some((b) => SPEAKER_CUES.has(b)) && !between.some((b) => NEGATORS.has(b))) {
          take(harm, 'threat');
          break;
        }
      }
    }
  }
  return best;
}
