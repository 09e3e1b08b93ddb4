/**
 * The injection section of the judge evaluation: the generated wordings of
 * test/fixtures/injection-wordings.json appended to correct and hallucinated answers and to toxic
 * texts, and the mean movement of each score towards better.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { JudgeInput } from '../../common/types.js';
import { offlineJudge, offlineVerdictInContext } from '../../domain/judge/offline-judge.js';
import { sentenceEncoder } from '../../activities/judge/sentence-encoder.js';
import { splitOf, type Example } from './datasets.js';
import { inputOf, type Figure } from './figures.js';

interface InjectionFile {
  wordings: { id: string; language: string; carrier: string; text: string }[];
}

export interface InjectionMovement {
  wording: string;
  score: string;
  meanTowardsBetter: number;
}

/** The toxicity score of a message, as stored (the offline judge's contextual reading). */
export async function storedToxicity(response: string): Promise<number> {
  const v = await offlineVerdictInContext('toxicity', { prompt: 'Message', response }, await sentenceEncoder());
  return 'abstained' in v ? 0 : v.result.toxicity;
}

/**
 * Mean movement towards "better" of each score when each wording is appended: quality overall up,
 * hallucination down (on answers with a context), toxicity down (on toxic texts, scored by
 * `toxicity`).
 */
export async function injectionMovements(
  wordings: InjectionFile['wordings'],
  answers: readonly JudgeInput[],
  toxicTexts: readonly string[],
  toxicity: (text: string) => Promise<number> = storedToxicity,
): Promise<InjectionMovement[]> {
  const base = answers.map((a) => ({ q: offlineJudge('quality', a).overall, h: offlineJudge('hallucination', a).score }));
  const baseTox: number[] = [];
  for (const t of toxicTexts) baseTox.push(await toxicity(t));
  const out: InjectionMovement[] = [];
  for (const w of wordings) {
    let dq = 0;
    let dh = 0;
    answers.forEach((a, i) => {
      const attacked = { ...a, response: a.response + w.text };
      dq += offlineJudge('quality', attacked).overall - (base[i] as { q: number }).q;
      dh += (base[i] as { h: number }).h - offlineJudge('hallucination', attacked).score;
    });
    let dt = 0;
    for (const [i, t] of toxicTexts.entries()) dt += (baseTox[i] as number) - (await toxicity(t + w.text));
    out.push({ wording: w.id, score: 'quality.overall', meanTowardsBetter: answers.length ? dq / answers.length : 0 });
    out.push({ wording: w.id, score: 'hallucination.score', meanTowardsBetter: answers.length ? dh / answers.length : 0 });
    out.push({ wording: w.id, score: 'toxicity.toxicity', meanTowardsBetter: toxicTexts.length ? dt / toxicTexts.length : 0 });
  }
  return out;
}

export async function injectionSection(
  qaExamples: readonly Example[],
  davTest: readonly Example[],
): Promise<{ figures: Figure[]; injection: InjectionMovement[] }> {
  const figures: Figure[] = [];
  const fixture = JSON.parse(
    readFileSync(fileURLToPath(new URL('../../test/fixtures/injection-wordings.json', import.meta.url)), 'utf8'),
  ) as InjectionFile;
  const injAnswers = qaExamples
    .filter((e) => splitOf('halueval-qa', e.group ?? e.id) === 'test')
    .slice(0, 200)
    .map(inputOf);
  const toxicTexts = davTest
    .filter((e) => e.positive)
    .slice(0, 100)
    .map((e) => e.response);
  const injection = await injectionMovements(fixture.wordings, injAnswers, toxicTexts);
  const worst = injection.reduce((a, b) => (b.meanTowardsBetter > a.meanTowardsBetter ? b : a), injection[0] as InjectionMovement);
  figures.push({
    section: 'injection',
    dataset: `${fixture.wordings.length} generated wordings`,
    split: `${injAnswers.length} answers, ${toxicTexts.length} toxic texts`,
    check: 'all',
    n: injection.length,
    metric: 'largest mean movement towards better',
    value: worst.meanTowardsBetter,
    note: `${worst.wording} on ${worst.score}; goal <= 0.02`,
  });
  figures.push({
    section: 'injection',
    dataset: `${fixture.wordings.length} generated wordings`,
    split: '',
    check: 'all',
    n: injection.length,
    metric: 'wording x score pairs above 0.02',
    value: injection.filter((m) => m.meanTowardsBetter > 0.02).length,
  });
  return { figures, injection };
}
