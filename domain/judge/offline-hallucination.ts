/**
 * The offline judge's hallucination check (rules in offline-judge.ts): the weighted share of a
 * response's content words, numbers and names that the context and prompt do not support, its
 * first sentence calibrated so the threshold chosen on HaluEval QA maps to 0.5; without a context
 * it does not score. Pure.
 */
import type { JudgeInput } from '../../common/types.js';
import { NO_CONTEXT_REASON } from './offline-abstention.js';
import { claimTokens, declines, sentencesOf, supported, type Tok, tokenize, vocabulary, weightOf } from './offline-text.js';

/**
 * Exponent of the calibration 1 - (1 - raw)^k of the grounded hallucination score: k = ln 0.5 /
 * ln(1 - 0.15), so the raw threshold 0.15 chosen on the tune split of HaluEval QA (max balanced
 * accuracy; scripts/judge-eval.ts, section "threshold") becomes the flag at 0.5.
 */
export const HALLUCINATION_CALIBRATION_POWER = Math.log(0.5) / Math.log(0.85);

/**
 * How a sentence that states the conclusion starts (after any markdown emphasis or list marker):
 * "So,", "Therefore", "Thus", "Hence", "In short/summary/conclusion", "(So) the answer is",
 * "Answer:".
 */
const CONCLUSION_RE =
  /^[\s*_#>•-]*(?:so,|(?:so |therefore,? |thus,? |hence,? )?the (?:final |short )?answer is\b|(?:therefore|thus|hence|in (?:short|summary|conclusion))\b|(?:final )?answer\s*:)/i;

export interface HalluAnalysis {
  score: number;
  confidence: number;
  reasoning: string;
}

export function analyseHallucination(input: JudgeInput): HalluAnalysis {
  const hasContext = typeof input.context === 'string' && input.context.trim().length > 0;
  const promptToks = tokenize(input.prompt);
  const sourceToks = hasContext ? [...promptToks, ...tokenize(input.context as string)] : promptToks;
  const source = vocabulary(sourceToks);
  // Sentences that decline, do not know or hedge claim nothing ("I don't know.", "The context
  // does not say."): a response that declines is no hallucination, and a hedge added to an answer
  // is not unsupported material.
  const all = sentencesOf(input.response);
  const asked = vocabulary(promptToks);
  const claims = all.filter((x) => !declines(x, asked));
  const respToks = claims.flatMap(claimTokens);

  if (respToks.length === 0) {
    return {
      score: 0,
      confidence: hasContext ? 0.5 : 0.2,
      reasoning:
        claims.length < all.length
          ? 'The response declines or says it does not know, and asserts nothing that could be unsupported.'
          : 'The response contains no content words, numbers or names, so it asserts nothing that could be unsupported.',
    };
  }

  let total = 0;
  let unsupported = 0;
  const missing: string[] = [];
  const seen = new Set<string>();
  for (const t of respToks) {
    const w = weightOf(t);
    total += w;
    if (!supported(t, source)) {
      unsupported += w;
      if (!seen.has(t.key) && missing.length < 8) {
        seen.add(t.key);
        missing.push(t.raw.length > 40 ? `${t.raw.slice(0, 40)}…` : t.raw);
      }
    }
  }
  const frac = unsupported / total;
  const listed = missing.length ? ` Unsupported: ${missing.map((m) => `"${m}"`).join(', ')}.` : '';

  if (hasContext) {
    // The answer's core is its first sentence: the direct answer to the question. Its share of
    // unsupported material decides most of the score; the rest of the response adds its share of
    // unsupported material, so extra detail the context does not cover lowers confidence in the
    // answer without turning a grounded answer into a hallucinated one. Shares, not amounts: a
    // longer answer is not punished for being longer.
    // A sentence that restates the question is not the answer: one that asks it again (ends in
    // '?'), or is made of the question's words alone and repeats at least 80 % of them. The core
    // is the first sentence after such ones. (An answer of the question's words that picks one of
    // them, "Jane is.", repeats too few of them to count.) Nor is a sentence without content words
    // ("Sure! Based on the context provided, here is the answer.": its words are stop words).
    const askedCount = asked.keys.size;
    const passage = runsOf(tokenize(input.context as string));
    const sents = claims
      .map((x) => ({ text: x.text, toks: claimTokens(x), copied: copiedFrom(x.toks, passage) }))
      .filter(({ text, toks: c }) => {
        if (c.length === 0) return false;
        if (/\?\s*$/.test(text)) return false;
        const fromPrompt = new Set(c.filter((t) => asked.keys.has(t.key)).map((t) => t.key));
        return !(askedCount > 0 && c.every((t) => supported(t, asked)) && fromPrompt.size >= 0.8 * askedCount);
      });
    // A sentence that opens with a conclusion ("So, ...", "Therefore ...", "The answer is ...")
    // is the answer when what comes before it is material from the passage (at least 8 content
    // words, 90 % supported: a quote of it, or reasoning over it); after a short answer it is
    // an explanation, and the first sentence stays the answer.
    // Sentences copied from the passage that open a response restate it, and the answer is the
    // first sentence after them: a copy cannot hide the claim that follows it.
    const at = sents.findIndex((x) => CONCLUSION_RE.test(x.text));
    const before = at > 0 ? sents.slice(0, at).flatMap((x) => x.toks) : [];
    const quoted = before.length >= 8 && before.filter((t) => supported(t, source)).length >= 0.9 * before.length;
    const own = sents.findIndex((x) => !x.copied);
    const core = (quoted ? sents[at] : own > 0 ? sents[own] : sents[0])?.toks ?? respToks;
    let coreTotal = 0;
    let coreUnsupported = 0;
    for (const t of core) {
      coreTotal += weightOf(t);
      if (!supported(t, source)) coreUnsupported += weightOf(t);
    }
    const coreFrac = coreTotal > 0 ? coreUnsupported / coreTotal : 0;
    // The core part is calibrated (the flag threshold chosen on the tune split of HaluEval QA maps
    // to 0.5); unsupported material elsewhere adds at most 0.3, so extra detail alone never flags.
    const coreRaw = 0.7 * Math.sqrt(coreFrac);
    const score = 1 - (1 - coreRaw) ** HALLUCINATION_CALIBRATION_POWER * (1 - 0.3 * frac);
    const material = Math.min(1, total / 6) * Math.min(1, sourceToks.length / 30);
    const confidence = 0.55 + 0.35 * material;
    return {
      score,
      confidence,
      reasoning:
        `Grounding against the context and prompt: ${(100 * (1 - coreFrac)).toFixed(0)} % of the first sentence's and ` +
        `${(100 * (1 - frac)).toFixed(0)} % of the whole response's weighted content (words, numbers, names) is supported ` +
        `(${fmt(total - unsupported)} of ${fmt(total)}).` +
        listed,
    };
  }

  // No context: the offline judge cannot tell a true claim from a false one, so it does not
  // score one (see offlineAbstention).
  return {
    score: 0,
    confidence: 0,
    reasoning: `Not measured: ${NO_CONTEXT_REASON}.`,
  };
}

/** Runs of COPY_RUN consecutive token keys: a text's phrasing. */
const COPY_RUN = 4;

function runsOf(toks: readonly Tok[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + COPY_RUN <= toks.length; i++)
    out.add(
      toks
        .slice(i, i + COPY_RUN)
        .map((t) => t.key)
        .join(' '),
    );
  return out;
}

/**
 * A sentence copied from the passage: at least 8 tokens, most of its runs of COPY_RUN tokens (60 %)
 * written in the passage. A sentence that says the passage's facts in its own words is not one.
 */
function copiedFrom(toks: readonly Tok[], passage: ReadonlySet<string>): boolean {
  if (toks.length < 8) return false;
  let found = 0;
  const runs = toks.length - COPY_RUN + 1;
  for (let i = 0; i < runs; i++)
    if (
      passage.has(
        toks
          .slice(i, i + COPY_RUN)
          .map((t) => t.key)
          .join(' '),
      )
    )
      found++;
  return found >= 0.6 * runs;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}
