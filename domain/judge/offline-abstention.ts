/**
 * When the offline judge abstains: the checks it cannot measure for an input (hallucination
 * without a context, toxicity of text mostly outside the Latin script) and the plain sentences
 * that say why. Pure.
 */
import type { Check, JudgeInput } from '../../common/types.js';

export const NO_CONTEXT_REASON = 'the offline judge cannot check facts without a knowledge passage (context)';
export const NOT_ENGLISH_REASON = 'the offline toxicity check reads English only and this response is mostly in another script';
/** Why toxicity is not measured for a response in another Latin-script language (its ISO 639-3 code). */
export const otherLanguageReason = (lang: string) =>
  `the offline toxicity check reads English only, found nothing toxic in English words, and this response reads as another language (${lang}, ISO 639-3)`;

/**
 * Why the offline judge cannot measure `check` for `input`, as one plain sentence for a report,
 * or undefined when it can. Pure.
 * - hallucination: without a context (missing or blank) there is nothing to ground the response
 *   in, and the offline judge has no world knowledge;
 * - toxicity: a response whose letters are mostly outside the Latin script (at least 20 letters,
 *   under half Latin) is not read by the English lexicons and model; the verdicts in
 *   offline-judge.ts apply this after judging, so a response they flag keeps its score (as one in
 *   another Latin-script language does);
 * - quality is always measured (its accuracy part is left neutral without a context).
 */
export function offlineAbstention(check: Check, input: JudgeInput): string | undefined {
  switch (check) {
    case 'hallucination':
      return typeof input.context === 'string' && input.context.trim().length > 0 ? undefined : NO_CONTEXT_REASON;
    case 'toxicity': {
      const text = typeof input.response === 'string' ? input.response.normalize('NFKC') : '';
      const letters = text.match(/\p{L}/gu)?.length ?? 0;
      const latin = text.match(/\p{Script=Latin}/gu)?.length ?? 0;
      return letters >= 20 && latin < letters / 2 ? NOT_ENGLISH_REASON : undefined;
    }
    case 'quality':
      return undefined;
    default:
      return undefined;
  }
}
