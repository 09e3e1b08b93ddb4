/**
 * The features of the offline toxicity model (toxicity-model.ts) for one token sequence (after
 * normalizeForToxicity):
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
 * Pure: no I/O, deterministic; per-token readings are memoised (bounded caches).
 */
import { HATE_SPEECH, type LexiconCategory, PROFANITY, VIOLENCE } from './toxicity-lexicon.js';
import { profanityIndices, profanityProbabilityOf } from './profanity-model.js';
import { own, phraseStarts, scoreCategory, squeeze, tokenHit } from './toxicity-text.js';

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

export function tokenProfanityIndices(token: string): readonly number[] {
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

/**
 * Words of anatomy and sexual health, as a doctor or a health page writes them. The imported
 * model reads them as profanity ("penis" 1.00, "anal" 0.99): it is not shown them in a text that
 * addresses no one (CLINICAL_ADDRESS), so "Viagra increases blood flow to the penis" is not
 * profane while "suck my penis" and "show me your breasts" are read as before.
 */
const CLINICAL = new Set([
  'penis',
  'penises',
  'vagina',
  'vaginas',
  'vaginal',
  'vulva',
  'vulvar',
  'clitoris',
  'anus',
  'anal',
  'rectum',
  'rectal',
  'testicle',
  'testicles',
  'testicular',
  'scrotum',
  'semen',
  'sperm',
  'ejaculation',
  'erection',
  'erections',
  'erectile',
  'masturbation',
  'orgasm',
  'orgasms',
  'intercourse',
  'sex',
  'sexual',
  'sexually',
  'genital',
  'genitals',
  'pubic',
  'nipple',
  'nipples',
  'breast',
  'breasts',
  'oral',
  'condom',
  'condoms',
]);
const CLINICAL_ADDRESS = new Set(['you', 'u', 'ur', 'youre', 'yourself', 'ya', 'yall', 'your', 'thee', 'me', 'my', 'mine']);

/**
 * The imported model's vocabulary indices of each normalised token of a part (tokenProfanityIndices),
 * without the words of anatomy and sexual health (CLINICAL) where the part addresses no one.
 */
export function partProfanityIndices(tokens: readonly string[]): (readonly number[])[] {
  const clinical = tokens.some((t) => CLINICAL.has(t)) && !tokens.some((t) => CLINICAL_ADDRESS.has(t));
  return tokens.map((t) => (clinical && CLINICAL.has(t) ? [] : tokenProfanityIndices(t)));
}

/** The imported model's reading of a run of normalised tokens (see partProfanityIndices). */
export function tokensProfanity(tokens: readonly string[]): { p: number; feature: number } {
  return profanityReading(partProfanityIndices(tokens).flat());
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

export function lexInfo(t: string, negative: Readonly<Record<string, number>>): LexInfo {
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
export function denseRange(tokens: readonly string[], infos: readonly LexInfo[], a: number, b: number, out: Float64Array): void {
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
export const MAX_TOKEN = 24;

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
