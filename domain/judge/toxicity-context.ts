/**
 * The contextual reading of the offline toxicity check: a sentence-embedding model
 * (all-MiniLM-L6-v2, int8 ONNX, data/all-minilm-l6-v2/, exported by
 * scripts/export-sentence-model.py; loaded and run by activities/judge/sentence-encoder.ts, the
 * I/O side) and a logistic head on its embedding trained by scripts/train-toxicity-context.ts
 * (weights in toxicity-context.data.ts). Pure: the encoder is passed in.
 *
 * Words alone miss what a sentence means ("You have the IQ of a potato" has no offensive word);
 * a sentence embedding is a mean over the whole text, so text appended to a toxic message would
 * dilute it. Hence the reading: the head is applied to every prefix of every part (sentence or
 * line) of the text's first CONTEXT_WORDS words, each prefix embedded alone, added to the word
 * model's logit of the same prefix, and the text scores as its highest prefix. Text appended to a
 * message either runs on from its last part, whose prefixes then include that whole part, or
 * starts new parts: every prefix of the message is still read, unchanged, so appended text can
 * raise the score and never lower it (contextSegments is closed under appending;
 * test/unit/toxicity-context.test.ts checks it). A text longer than CONTEXT_WORDS also keeps
 * the word model's reading of the whole (which appended text does not lower either).
 *
 * Cost: the prefixes of a part of n words are n forward passes (about n²/2 words), so the
 * reading is bounded by CONTEXT_WORDS; the model reads about 4,400 tokens a second on one core.
 */
import { TOXICITY_CONTEXT_HEAD_JSON } from './toxicity-context.data.js';
import { HARM_VERBS } from './toxicity-lexicon.js';
import { PHRASE_OPENERS } from './toxicity-model.js';
import { own } from './toxicity-text.js';

/** How many words of a text, from its start, are read in context. */
export const CONTEXT_WORDS = 48;
/** A prefix longer than this many characters is not read (the model reads its first 128 tokens anyway). */
export const CONTEXT_CHARS = 1000;
/** Embedding width of the model. */
export const EMBEDDING_DIM = 384;

/** A prefix shorter than this many words is not read unless it is the whole part ("Ugly | Betty"). */
export const MIN_PREFIX_WORDS = 2;
/** Verbs of feeling whose object follows them. */
const FEELING_VERBS = new Set(['hate', 'hates', 'despise', 'despises', 'loathe', 'loathes']);

/**
 * Whether a prefix ending on `word` stops where a phrase goes on: on a word that opens a noun
 * phrase ("Please kill the | process"), or a harm or feeling verb before its object ("kill | two
 * birds"). Such a prefix says what the text does not, as in the word model's windows.
 */
function opensPhrase(word: string): boolean {
  const w = word.toLowerCase().replace(/[^\p{L}']/gu, '');
  return PHRASE_OPENERS.has(w) || FEELING_VERBS.has(w) || own(HARM_VERBS, w) !== undefined;
}

/** Sentence ends followed by space, and line breaks. */
const PART_SPLIT = /(?<=[.!?])\s+|[\r\n]+/;

/**
 * The stretches of a text read in context: every whole part and every prefix (at word boundaries)
 * of a part within the first CONTEXT_WORDS words, distinct, but for prefixes shorter than
 * MIN_PREFIX_WORDS, ending where a phrase goes on (opensPhrase) or longer than CONTEXT_CHARS.
 * `truncated` says some of the text is not read (beyond CONTEXT_WORDS words, or in a part cut at
 * CONTEXT_CHARS). Closed under appending text that starts with white space, but for a last part
 * that was shorter than MIN_PREFIX_WORDS or ended on such a word: its prefix is then no longer
 * read by the head (the word model still reads those words in every longer prefix).
 */
export function contextSegments(text: string): { segments: string[]; truncated: boolean } {
  const out = new Set<string>();
  let used = 0;
  let cut = false;
  for (const raw of text.split(PART_SPLIT)) {
    const part = raw.trim();
    if (!/[\p{L}\p{N}]/u.test(part)) continue;
    const words = part.split(/\s+/);
    const n = Math.min(words.length, CONTEXT_WORDS - used);
    let prefix = '';
    for (let k = 1; k <= n; k++) {
      prefix = k === 1 ? (words[0] as string) : `${prefix} ${words[k - 1]}`;
      if (prefix.length > CONTEXT_CHARS) {
        cut = true;
        break;
      }
      if (k === words.length || (k >= MIN_PREFIX_WORDS && !opensPhrase(words[k - 1] as string))) out.add(prefix);
    }
    used += words.length;
  }
  const truncated = used > CONTEXT_WORDS || cut;
  return { segments: [...out], truncated };
}

export interface ContextHead {
  version: string;
  /** Weight of the head's logit when added to the word model's. */
  beta: number;
  /** Threshold on the combined logit that maps to 0.5. */
  offset: number;
  bias: number;
  weights: number[];
}

let head: ContextHead | undefined;

/** The shipped head (parsed once). */
export function contextHead(): ContextHead {
  head ??= JSON.parse(TOXICITY_CONTEXT_HEAD_JSON) as ContextHead;
  return head;
}

/** The head's logit for one embedding (row `i` of a flat n × EMBEDDING_DIM array). */
export function headLogit(h: Pick<ContextHead, 'bias' | 'weights'>, embeddings: Float32Array, i: number): number {
  let z = h.bias;
  const o = i * EMBEDDING_DIM;
  for (let k = 0; k < EMBEDDING_DIM; k++) z += (h.weights[k] as number) * (embeddings[o + k] as number);
  return z;
}

/** Token ids and unit-length embeddings of texts. */
export interface SentenceEncoder {
  ids(text: string): number[];
  /** n × EMBEDDING_DIM, row i for texts[i]. */
  embed(texts: readonly string[]): Promise<Float32Array>;
}

export interface ContextReading {
  /** Combined logit minus the head's offset: >= 0 is the flag. */
  logit: number;
  /** The segment that scored highest. */
  worst: string;
  /** How many segments were read. */
  segments: number;
  truncated: boolean;
}

/**
 * The contextual reading of `text`: the highest over contextSegments of the word model's logit
 * (`wordLogit`, on the same calibrated scale: 0 is its flag) plus beta times the head's logit,
 * less the head's offset. Undefined for a text without letters or digits.
 */
export async function readInContext(
  text: string,
  wordLogit: (segment: string) => number,
  encoder: SentenceEncoder,
  h: ContextHead = contextHead(),
): Promise<ContextReading | undefined> {
  const { segments, truncated } = contextSegments(text);
  if (!segments.length) return undefined;
  const e = await encoder.embed(segments);
  let best = Number.NEGATIVE_INFINITY;
  let worst = '';
  segments.forEach((s, i) => {
    const z = wordLogit(s) + h.beta * headLogit(h, e, i) - h.offset;
    if (z > best) {
      best = z;
      worst = s;
    }
  });
  return { logit: best, worst, segments: segments.length, truncated };
}
