/**
 * The threshold and calibration sections of the judge evaluation: the hallucination flag
 * threshold chosen on the tune split and its precision and recall on the test split; reliability
 * tables (predicted score band vs observed rate) and expected calibration error per check.
 */
import { bestThreshold, binaryReport } from '../../domain/judge/eval-metrics.js';
import { reliabilityFigures, type Figure } from './figures.js';
import type { HallucinationSection } from './hallucination-figures.js';
import type { ToxicitySection } from './toxicity-figures.js';

export function thresholdFigures(hal: HallucinationSection): Figure[] {
  const { qaS, qaSplit } = hal;
  const figures: Figure[] = [];
  if (qaS.abstained === 0) {
    const pick = (sp: string) => ({ s: qaS.scores.filter((_, i) => qaSplit[i] === sp), y: qaS.labels.filter((_, i) => qaSplit[i] === sp) });
    const tune = pick('tune');
    const test = pick('test');
    const t = bestThreshold(tune.s, tune.y);
    if (Number.isFinite(t) && test.s.length) {
      const rep = binaryReport(test.s, test.y, t);
      const at05 = binaryReport(test.s, test.y, 0.5);
      const hallucination = {
        section: 'threshold',
        dataset: 'halueval qa',
        split: 'test',
        check: 'hallucination',
        n: test.s.length,
      } as const;
      figures.push(
        { ...hallucination, split: 'tune -> test', metric: 'threshold chosen on tune', value: t, note: 'max balanced accuracy' },
        { ...hallucination, metric: 'recall@chosen', value: rep.recall, baseline: at05.recall, note: 'baseline column: at 0.5' },
        { ...hallucination, metric: 'precision@chosen', value: rep.precision, baseline: at05.precision, note: 'baseline column: at 0.5' },
        { ...hallucination, metric: 'AUROC', value: rep.auroc },
      );
    }
  }
  figures.push({
    section: 'threshold',
    dataset: 'toxicity model',
    split: 'tune',
    check: 'toxicity',
    n: 0,
    metric: 'threshold mapped to 0.5',
    value: 0.5,
    note: 'chosen by scripts/train-toxicity.ts on the tune splits of Davidson, Jigsaw, HateCheck, HaluEval texts and OLID (its validation file) (alt-profanity-check saw all of Davidson and Jigsaw comments); test figures above',
  });
  return figures;
}

export function calibrationFigures(tox: ToxicitySection, hal: HallucinationSection): Figure[] {
  const { davS, hcS, ethS, olidS } = tox;
  const { qaS, qaSplit } = hal;
  const figures: Figure[] = [];
  figures.push(...reliabilityFigures('davidson', 'test', 'toxicity', davS.scores, davS.labels));
  figures.push(...reliabilityFigures('hatecheck', 'test', 'toxicity', hcS.scores, hcS.labels));
  figures.push(...reliabilityFigures('ethos (held out)', 'all', 'toxicity', ethS.scores, ethS.labels));
  figures.push(...reliabilityFigures('olid test file (held out)', 'all', 'toxicity', olidS.scores, olidS.labels));
  if (qaS.abstained === 0) {
    const testIdx = qaSplit.map((s, i) => (s === 'test' ? i : -1)).filter((i) => i >= 0);
    figures.push(
      ...reliabilityFigures(
        'halueval qa',
        'test',
        'hallucination',
        testIdx.map((i) => qaS.scores[i] as number),
        testIdx.map((i) => qaS.labels[i] as boolean),
      ),
    );
  }
  return figures;
}
