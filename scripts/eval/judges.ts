/**
 * Judges as the evaluation sees them: a function from a check and an input to a score or an
 * abstention. Any judge (the offline one here, an LLM judge later) plugs into scripts/judge-eval.ts
 * through this shape.
 */
import { primaryScore, type Check, type JudgeInput } from '../../common/types.js';
import { OFFLINE_JUDGE_VERSION, offlineVerdict, offlineVerdictInContext } from '../../domain/judge/offline-judge.js';
import { sentenceEncoder } from '../../activities/judge/sentence-encoder.js';
import { HATE_SPEECH, PROFANITY, VIOLENCE } from '../../domain/judge/toxicity-lexicon.js';
import { normalizeForToxicity, scoreCategory } from '../../domain/judge/toxicity-text.js';

export type JudgeOutcome = { score: number } | { abstained: string };

export interface EvalJudge {
  name: string;
  judge: (check: Check, input: JudgeInput) => Promise<JudgeOutcome>;
}

/** The offline judge as the collector runs it: its primary score per check, or its abstention. */
export const offlineEvalJudge: EvalJudge = {
  name: OFFLINE_JUDGE_VERSION,
  judge: async (check, input) => {
    const v = await offlineVerdictInContext(check, input, await sentenceEncoder());
    return 'abstained' in v ? v : { score: primaryScore(check, v.result) };
  },
};

/** The offline judge's word-level reading alone (offlineVerdict: toxicity without the sentence model). */
export const wordLevelEvalJudge: EvalJudge = {
  name: `${OFFLINE_JUDGE_VERSION} (word model alone)`,
  judge: async (check, input) => {
    const v = offlineVerdict(check, input);
    return 'abstained' in v ? v : { score: primaryScore(check, v.result) };
  },
};

/**
 * The lexicon alone, as the previous offline judge (offline-v2) scored toxicity: a baseline for
 * the before/after columns. toxicity = 1 - (1 - profanity)(1 - hate)(1 - 0.7 violence), plus 10 %
 * of the remainder when the text addresses someone.
 */
export function lexiconToxicity(text: string): number {
  const tokens = normalizeForToxicity(text);
  const prof = scoreCategory(tokens, PROFANITY).score;
  const hate = scoreCategory(tokens, HATE_SPEECH).score;
  const viol = scoreCategory(tokens, VIOLENCE).score;
  let t = 1 - (1 - prof) * (1 - hate) * (1 - 0.7 * viol);
  if (t > 0 && tokens.some((x) => ['you', 'u', 'ur', 'youre', 'yo', 'ya', 'yall', 'your'].includes(x))) t += 0.1 * (1 - t);
  return t;
}
