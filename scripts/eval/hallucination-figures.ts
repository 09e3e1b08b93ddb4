/**
 * The hallucination section of the judge evaluation: HaluEval QA (right vs hallucinated answers,
 * with the knowledge passage) on all pairs, on length-matched pairs and on correct answers that
 * add a true detail the passage does not contain, against answer length; HaluEval general (no
 * passage): coverage.
 */
import { auroc, lengthMatched } from '../../domain/judge/eval-metrics.js';
import { loadGeneral, loadQaRows, splitOf, type Example, type QaRow } from './datasets.js';
import { classification, scoreAll, type EvalContext, type Figure, type Scored } from './figures.js';

export interface HallucinationSection {
  figures: Figure[];
  /** HaluEval QA: the right and the hallucinated answer of each row (within the limit), their scores and splits. */
  qaExamples: Example[];
  qaS: Scored;
  qaSplit: string[];
  /** HaluEval general: the rows within the limit, and all rows. */
  genRows: Example[];
  genAll: Example[];
}

/**
 * Correct answers that add a true detail the passage does not contain: the knowledge passage
 * loses one of its sentences, and the right answer is followed by that sentence (true, from the
 * same Wikipedia text, but no longer in the context). Rows whose right answer would lose its
 * support are skipped. Paired with the hallucinated answer under the same shortened passage.
 */
export function trueDetailPairs(rows: readonly QaRow[]): { negative: Example; positive: Example }[] {
  const out: { negative: Example; positive: Example }[] = [];
  for (const r of rows) {
    const sentences = r.knowledge
      .split(/(?<=[.!?])\s*(?=[A-Z])/)
      .map((x) => x.trim())
      .filter(Boolean);
    if (sentences.length < 2) continue;
    const answer = r.right.toLowerCase();
    let k = -1;
    for (let i = sentences.length - 1; i >= 0; i--)
      if (!(sentences[i] as string).toLowerCase().includes(answer)) {
        k = i;
        break;
      }
    if (k < 0) continue;
    const context = sentences.filter((_, i) => i !== k).join(' ');
    if (!context.toLowerCase().includes(answer)) continue;
    const detail = sentences[k] as string;
    const right = /[.!?]$/.test(r.right.trim()) ? r.right.trim() : `${r.right.trim()}.`;
    out.push({
      negative: { id: `${r.id}:detail`, prompt: r.question, context, response: `${right} ${detail}`, positive: false },
      positive: { id: `${r.id}:hallucinated`, prompt: r.question, context, response: r.hallucinated, positive: true },
    });
  }
  return out;
}

export async function hallucinationSection(ctx: EvalContext): Promise<HallucinationSection> {
  const { dataDir, lim, judge, skipped } = ctx;
  const figures: Figure[] = [];
  const qa = loadQaRows(dataDir);
  skipped['halueval/qa_one-turn.jsonl'] = qa.malformed;
  const qaRows = lim(qa.rows);
  const qaExamples = qaRows.flatMap((r) => [
    { id: `${r.id}:right`, prompt: r.question, context: r.knowledge, response: r.right, positive: false, group: r.id },
    { id: `${r.id}:hallucinated`, prompt: r.question, context: r.knowledge, response: r.hallucinated, positive: true, group: r.id },
  ]);
  const qaS = await scoreAll(judge, 'hallucination', qaExamples);
  const len = qaExamples.map((e) => e.response.length);
  figures.push(
    ...classification('hallucination', 'halueval qa (with passage)', 'all rows', 'hallucination', qaS, 0.5).map((f) =>
      f.metric === 'AUROC'
        ? {
            ...f,
            baseline: auroc(
              len,
              qaExamples.map((e) => e.positive),
            ),
            note: 'baseline: answer length',
          }
        : f,
    ),
  );
  // Length-matched pairs.
  const pairs = qaRows.map((_, i) => [2 * i, 2 * i + 1] as const);
  const matched = lengthMatched(pairs, (i) => (qaExamples[i] as Example).response.length, 0.2);
  const mIdx = matched.flat();
  if (qaS.abstained === 0 && mIdx.length) {
    figures.push({
      section: 'hallucination',
      dataset: 'halueval qa, length-matched pairs (±20 %)',
      split: 'all rows',
      check: 'hallucination',
      n: mIdx.length,
      metric: 'AUROC',
      value: auroc(
        mIdx.map((i) => qaS.scores[i] as number),
        mIdx.map((i) => qaS.labels[i] as boolean),
      ),
      baseline: auroc(
        mIdx.map((i) => len[i] as number),
        mIdx.map((i) => qaS.labels[i] as boolean),
      ),
      note: `${matched.length} of ${pairs.length} pairs; baseline: answer length`,
    });
  }
  // Correct answers with an added true detail.
  const detail = trueDetailPairs(qaRows);
  const detailExamples = detail.flatMap((p) => [p.negative, p.positive]);
  const dS = await scoreAll(judge, 'hallucination', detailExamples);
  if (dS.abstained === 0 && detailExamples.length) {
    figures.push({
      section: 'hallucination',
      dataset: 'halueval qa, correct answer + true detail not in passage',
      split: 'all rows',
      check: 'hallucination',
      n: detailExamples.length,
      metric: 'AUROC',
      value: auroc(dS.scores, dS.labels),
      baseline: auroc(
        detailExamples.map((e) => e.response.length),
        dS.labels,
      ),
      note: 'vs the hallucinated answer; baseline: answer length',
    });
    const negScores = dS.scores.filter((_, i) => !dS.labels[i]);
    figures.push({
      section: 'hallucination',
      dataset: 'halueval qa, correct answer + true detail not in passage',
      split: 'all rows',
      check: 'hallucination',
      n: negScores.length,
      metric: 'false-positive rate@0.5',
      value: negScores.filter((x) => x >= 0.5).length / Math.max(1, negScores.length),
    });
  }
  // No passage: coverage.
  const gen = loadGeneral(dataDir);
  skipped['halueval/general.jsonl'] = gen.malformed;
  const genRows = lim(gen.rows);
  const gS = await scoreAll(judge, 'hallucination', genRows);
  figures.push({
    section: 'hallucination',
    dataset: 'halueval general (no passage)',
    split: 'all rows',
    check: 'hallucination',
    n: genRows.length,
    metric: 'coverage (share scored)',
    value: gS.scores.length / Math.max(1, genRows.length),
    note: gS.reasons.size ? `abstained: ${[...gS.reasons].join('; ')}` : '',
  });
  if (gS.scores.length)
    figures.push(...classification('hallucination', 'halueval general (no passage)', 'scored rows', 'hallucination', gS, 0.5));
  const qaSplit = qaExamples.map((e) => splitOf('halueval-qa', e.group ?? e.id));
  return { figures, qaExamples, qaS, qaSplit, genRows, genAll: gen.rows };
}
