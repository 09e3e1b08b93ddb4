/**
 * The offline judge's quality check (rules in offline-judge.ts): which sentences are on topic,
 * then relevance, completeness (by the kind of question asked), coherence (repetition, dominance,
 * noise), accuracy from the hallucination check, and the overall score. Pure.
 */
import type { CheckResult, JudgeInput } from '../../common/types.js';
import { NO_CONTEXT_REASON } from './offline-abstention.js';
import type { HalluAnalysis } from './offline-hallucination.js';
import { clamp01, claimTokens, contentTokens, declines, r4, sentencesOf, supported, tokenize, vocabulary } from './offline-text.js';

const REFUSAL_RE =
  /\b(as an ai(?: language model)?|i(?: am|'m) (?:sorry|unable|not able)|i cannot|i can't|i can not|i do not have (?:access|the ability)|i don't have (?:access|the ability))\b/i;
const QUESTION_WORD_RE = /\b(who|whom|whose|what|when|where|which|how (?:many|much|old|long|far|tall|big))\b/i;
const YES_NO_RE = /^\s*(is|are|was|were|do|does|did|can|could|has|have|had|will|would|should)\b/i;
const YES_NO_ANSWER_RE = /^\W*(yes|no)\b/i;
/** Requests for creative writing, whose answer need not use the request's words (a haiku about autumn). */
const CREATIVE_RE =
  /\b(?:write|compose|create|make up|give me|tell me)\b[^.?!\n]{0,40}\b(?:poem|haiku|limerick|sonnet|verse|rhyme|song|lyrics|rap|story|tale|joke|pun|riddle|slogan|tagline)s?\b/i;
const LONG_FORM_RE =
  /\b(explain|describe|discuss|list|write|compose|create|generate|compare|contrast|summari[sz]e|outline|analy[sz]e|elaborate|essay|story|poem|article|steps|how (?:do|does|can|to|should)|why)\b/i;

/** Content words a complete answer needs, by question type. */
export function expectedContentWords(prompt: string): number {
  if (LONG_FORM_RE.test(prompt)) return 40;
  const shortQuestion = prompt.length <= 300 && /\?\s*$/.test(prompt.trim());
  if (YES_NO_RE.test(prompt) || (QUESTION_WORD_RE.test(prompt) && (shortQuestion || prompt.length <= 120))) return 1;
  return 15;
}

/** A line that is an item of a list. */
const LIST_ITEM_RE = /^\s*(?:[-*•+]|\d{1,3}[.)])\s+/;
/** Below this share of function words (and without a list's separators) a run of words is no sentence. */
const SALAD_FUNCTION_SHARE = 0.12;

/** Minimum number of distinct shared content words for a sentence to join the topic by chaining. */
const CHAIN_OVERLAP = 2;

export function judgeQuality(input: JudgeInput, hallu: HalluAnalysis): CheckResult<'quality'> {
  const hasContext = typeof input.context === 'string' && input.context.trim().length > 0;
  const sents = sentencesOf(input.response);
  const promptContent = contentTokens(tokenize(input.prompt));
  const topic = vocabulary([...promptContent, ...(hasContext ? contentTokens(tokenize(input.context ?? '')) : [])]);
  const expected = expectedContentWords(input.prompt);

  // Which sentences are on topic: those sharing content words with the prompt or context, a bare
  // answer (a single sentence of at most three content words), and, by chaining, sentences that
  // share at least CHAIN_OVERLAP distinct content words with text already on topic.
  // A sentence that repeats the question (asks it again, or is its words in its order) answers
  // nothing, and one that declines, does not know or hedges claims nothing: neither counts as
  // content. A response of nothing but such sentences has no relevant content.
  const promptSequence = tokenize(input.prompt)
    .map((t) => t.key)
    .join(' ');
  const echoes = sents.map((s) => /\?\s*$/.test(s.text) || (s.toks.length > 0 && s.toks.map((t) => t.key).join(' ') === promptSequence));
  const asked = vocabulary(promptContent);
  const declined = sents.map((s) => declines(s, asked));
  const sentContent = sents.map((s, i) => (echoes[i] || declined[i] ? [] : claimTokens(s)));
  const declinedAll = declined.some(Boolean) && sentContent.every((c) => c.length === 0);
  // A shared number alone is weak evidence of topic ("1" appears almost everywhere): it takes a
  // shared word or name, or two shared items.
  const on = sentContent.map((c) => {
    const shared = c.filter((t) => supported(t, topic));
    return shared.some((t) => t.kind !== 'number') || new Set(shared.map((t) => t.key)).size >= 2;
  });
  // Sentences without content words ("Sure!", "Great question.") are neither on nor off topic.
  const said = sentContent.map((c, i) => (c.length > 0 ? i : -1)).filter((i) => i >= 0);
  const only = said.length === 1 ? (said[0] as number) : -1;
  if (only >= 0 && (sentContent[only]?.length ?? 0) <= 3) on[only] = true;
  // "Yes" or "no" (with or without a reason) answers a yes/no question, though neither is a content word.
  const yesNo = YES_NO_RE.test(input.prompt) && YES_NO_ANSWER_RE.test(input.response);
  if (yesNo && sents.length > 0) on[0] = true;
  // Where words cannot show the topic — a prompt without content words ("Who are you?") and no
  // context, or a request for creative writing — no sentence that says something is off topic.
  const topicUnknown = (topic.keys.size === 0 && !hasContext) || CREATIVE_RE.test(input.prompt);
  if (topicUnknown) for (const i of said) on[i] = true;
  for (let changed = true; changed; ) {
    changed = false;
    const onVocab = vocabulary(sentContent.filter((_, i) => on[i]).flat());
    for (let i = 0; i < sents.length; i++) {
      if (on[i]) continue;
      const shared = new Set((sentContent[i] ?? []).filter((t) => supported(t, onVocab)).map((t) => t.key));
      if (shared.size >= CHAIN_OVERLAP) {
        on[i] = true;
        changed = true;
      }
    }
  }
  // The items of a list answer together: a list (lines opening with "-", "*", "•" or "1.") most
  // of whose items are on topic is on topic as a whole (terse items share few words).
  // One pass over the sentences and `said` (ascending) together: linear in the sentences.
  const item = sents.map((x) => LIST_ITEM_RE.test(x.text));
  for (let i = 0, s = 0; i < sents.length; ) {
    let j = i;
    while (j < sents.length && item[j]) j++;
    while (s < said.length && said[s]! < i) s++;
    const run: number[] = [];
    for (; s < said.length && said[s]! < j; s++) run.push(said[s]!);
    if (run.length >= 2 && 2 * run.filter((k) => on[k]).length >= run.length) for (const k of run) on[k] = true;
    i = Math.max(j, i + 1);
  }
  const onTopicSentences = on.filter(Boolean).length;
  const nSent = sents.length;
  const focus = nSent === 0 ? 0 : said.length === 0 ? onTopicSentences / nSent : said.filter((i) => on[i]).length / said.length;
  const onSents = sents.filter((_, i) => on[i]);
  const onToks = onSents.flatMap((s) => s.toks);
  const onContent = contentTokens(onToks);

  // Relevance: coverage of the prompt's content words, and focus.
  const respVocab = vocabulary(onContent);
  const promptKeys = [...new Set(promptContent.map((t) => t.key))];
  const covered = new Set(promptContent.filter((t) => supported(t, respVocab)).map((t) => t.key)).size;
  const needed = Math.max(1, Math.min(6, Math.ceil(0.6 * promptKeys.length)));
  let coverage = promptKeys.length ? Math.min(1, covered / needed) : topicUnknown ? 0 : focus;
  // A short answer to a factoid question need not repeat the question's words.
  if ((expected === 1 || topicUnknown) && (onContent.length > 0 || yesNo)) coverage = Math.max(coverage, 0.6);
  const relevance = nSent === 0 ? 0 : declinedAll ? Math.min(0.3, 0.6 * coverage + 0.4 * focus) : 0.6 * coverage + 0.4 * focus;

  // Completeness: on-topic content words (with a context, only those the context supports).
  const counted = hasContext ? onContent.filter((t) => supported(t, topic)).length : onContent.length;
  let completeness = Math.min(1, Math.sqrt((counted + (yesNo ? 1 : 0)) / expected));
  const refusal = declinedAll || REFUSAL_RE.test(input.response);
  if (refusal) completeness = Math.min(completeness, 0.3);

  // Coherence: how the response is written, on topic or not (focus weighs in below), leaving out
  // the question repeated. Penalties are normalised by at least a fixed amount of text, so that
  // short answers are not judged on a handful of words.
  const written = sents.filter((_, i) => !echoes[i]);
  const words = written
    .flatMap((s) => s.toks)
    .filter((t) => t.kind !== 'number')
    .map((t) => t.raw.toLowerCase());
  const grams = new Map<string, number>();
  for (let i = 0; i + 2 < words.length; i++) {
    const g = `${words[i]} ${words[i + 1]} ${words[i + 2]}`;
    grams.set(g, (grams.get(g) ?? 0) + 1);
  }
  let repeats = 0;
  for (const c of grams.values()) repeats += c - 1;
  const repetition = repeats / Math.max(grams.size + repeats, 50);
  const freq = new Map<string, number>();
  const writtenContent = contentTokens(written.flatMap((x) => x.toks));
  for (const t of writtenContent) freq.set(t.key, (freq.get(t.key) ?? 0) + 1);
  let dominant = 0;
  for (const c of freq.values()) dominant = Math.max(dominant, c);
  const span = Math.max(writtenContent.length, 40);
  const dominance = Math.max(0, dominant - 0.2 * span) / span;
  const onText = written
    .map((s) => s.text)
    .join(' ')
    .replace(/\s+/g, '');
  const letters = (onText.match(/\p{L}/gu) ?? []).length;
  const chars = Math.max(onText.length, 200);
  const noise = Math.max(0, onText.length - letters - 0.25 * chars) / chars;
  const base = onText.length === 0 ? 0 : clamp01(1 - 1.2 * repetition - 1.0 * dominance - 1.0 * noise);
  // Degenerate text, as a broken model writes it, is a flaw of the whole answer: the same sentence
  // again and again (the share of sentences that repeat an earlier one), and words strung without
  // the function words of sentences or the separators of a list ("word salad").
  const sentenceKeys = said.map((i) =>
    (sents[i]?.text ?? '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}]+/gu, ' ')
      .trim(),
  );
  const duplicated = sentenceKeys.length > 1 ? 1 - new Set(sentenceKeys).size / sentenceKeys.length : 0;
  const wordToks = written.flatMap((x) => x.toks).filter((t) => t.kind !== 'number');
  const writtenText = written.map((x) => x.text).join('\n');
  const separators = (writtenText.match(/[,;:•|/\n]|(?:^|\s)[-*](?=\s)/g) ?? []).length;
  const functionShare = wordToks.length ? wordToks.filter((t) => t.stop).length / wordToks.length : 1;
  const salad =
    wordToks.length >= 12 && 4 * separators < wordToks.length && !/[{}();=<>]/.test(writtenText)
      ? clamp01((SALAD_FUNCTION_SHARE - functionShare) / SALAD_FUNCTION_SHARE)
      : 0;
  const flaw = Math.max(duplicated, salad);
  const coherence = base * (0.8 + 0.2 * focus) * (1 - flaw);

  // Without a context the facts cannot be checked: accuracy is left neutral (0.5) and the overall
  // score is made of what can be judged.
  // A response that only declines states nothing to be right or wrong about: neutral too.
  const accuracy = hasContext && !declinedAll ? 1 - hallu.score : 0.5;
  const overall =
    (hasContext
      ? (0.3 * relevance + 0.3 * accuracy + 0.2 * completeness + 0.2 * coherence) * (0.5 + 0.5 * accuracy)
      : 0.4 * relevance + 0.3 * completeness + 0.3 * coherence) *
    (1 - flaw);
  return {
    coherence: r4(coherence),
    relevance: r4(relevance),
    accuracy: r4(accuracy),
    completeness: r4(completeness),
    overall: r4(overall),
    reasoning:
      `Relevance: ${covered} of ${promptKeys.length} prompt terms addressed, ${onTopicSentences} of ${nSent} sentences on topic. ` +
      `Completeness: ${counted} ${hasContext ? 'grounded ' : ''}on-topic content words for an expected ~${expected}${refusal ? ' (refusal)' : ''}. ` +
      `Coherence: repetition ${(100 * repetition).toFixed(0)} %, noise ${(100 * noise).toFixed(0)} %` +
      (duplicated > 0 ? `, ${(100 * duplicated).toFixed(0)} % of sentences repeat an earlier one` : '') +
      (salad > 0 ? ', words strung without sentences' : '') +
      '. ' +
      (hasContext
        ? `Accuracy from the hallucination check (${hallu.score.toFixed(2)}).`
        : `Accuracy not measured (${NO_CONTEXT_REASON}); left at 0.5 and out of the overall score.`),
  };
}
