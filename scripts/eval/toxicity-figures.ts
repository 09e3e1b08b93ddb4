/**
 * The toxicity sections of the judge evaluation: the judge on the test splits of the sources the
 * toxicity model was trained on, on OLID's test file and on the sources it never saw (Ethos, the sanity set), against
 * the lexicon alone; HateCheck per functionality; the word model alone (without the contextual
 * reading) and alt-profanity-check alone on the same sets.
 */
import { profanityProbability } from '../../domain/judge/profanity-model.js';
import {
  loadDavidson,
  loadEthos,
  loadHaluEvalClean,
  loadHateCheck,
  loadJigsaw,
  loadOlid,
  loadSanity,
  splitOf,
  type Example,
} from './datasets.js';
import { classification, scoreAll, type EvalContext, type Figure, type Scored } from './figures.js';
import { lexiconToxicity, wordLevelEvalJudge } from './judges.js';

export interface ToxicitySection {
  figures: Figure[];
  /** Davidson tweets: the test split and all rows (within the limit). */
  davTest: Example[];
  davAll: Example[];
  /** The judge's scores of the Davidson test split, the HateCheck test split and Ethos. */
  davS: Scored;
  hcS: Scored;
  ethS: Scored;
  /** The judge's scores of OLID's test file. */
  olidS: Scored;
}

/** OLID's test file: the model was trained on its train file and tuned on its validation file, never on this one. */
const OLID_TEST = 'olid tweets (trained on its train file; this test file never seen)';

export async function toxicitySection(ctx: EvalContext): Promise<ToxicitySection> {
  const { dataDir, lim, judge, skipped } = ctx;
  const figures: Figure[] = [];
  const dav = loadDavidson(dataDir);
  skipped['davidson-offensive/labeled_data.csv'] = dav.malformed;
  const davTest = lim(dav.rows.filter((e) => splitOf('davidson', e.id) === 'test'));
  const davAll = lim(dav.rows);
  const hc = loadHateCheck(dataDir);
  skipped['hatecheck/test_suite_templates.tsv'] = hc.malformed;
  const hcTest = lim(hc.rows.filter((e) => splitOf('hatecheck', e.id) === 'test'));
  const jig = loadJigsaw(dataDir);
  skipped['jigsaw/*.csv'] = jig.malformed;
  const jigTest = lim(jig.rows.filter((e) => splitOf('jigsaw', e.id) === 'test'));
  const ethos = loadEthos(dataDir);
  skipped['ethos/Ethos_Dataset_Binary.sample.csv'] = ethos.malformed;
  const olidTest = loadOlid(dataDir, 'test');
  skipped['tweeteval-offensive/test_*.txt'] = olidTest.malformed;
  const sanity = loadSanity(dataDir).rows;
  const clean = loadHaluEvalClean(dataDir);
  const cleanTest = lim(clean.rows.filter((e) => splitOf('halueval-clean', e.id) === 'test'));
  const HC = 'hatecheck templates (seen in training; relabelled for toxicity)';
  const DAV = 'davidson tweets (seen in training; all rows in alt-profanity-check training)';
  const toxSets: [string, string, Example[]][] = [
    [DAV, 'test', davTest],
    ['jigsaw wikipedia comments (seen in training; source of alt-profanity-check training)', 'test', jigTest],
    [HC, 'test', hcTest],
    ['halueval texts (seen in training; all non-toxic)', 'test', cleanTest],
    [OLID_TEST, 'all', lim(olidTest.rows)],
    ['ethos youtube/reddit comments (NEVER seen: held-out source)', 'all', lim(ethos.rows)],
    ['sanity set (hand-written, never trained or tuned on)', 'all', sanity],
  ];
  const toxScores = new Map<string, Scored>();
  for (const [name, split, rows] of toxSets) {
    const s = await scoreAll(judge, 'toxicity', rows);
    toxScores.set(`${name}|${split}`, s);
    // The lexicon baseline on the same rows (those the judge did not abstain on).
    const base = s.index.map((i) => lexiconToxicity((rows[i] as Example).response));
    figures.push(...classification('toxicity', name, split, 'toxicity', s, 0.5, base));
    if (s.abstained)
      figures.push({
        section: 'toxicity',
        dataset: name,
        split,
        check: 'toxicity',
        n: rows.length,
        metric: 'abstained',
        value: s.abstained / rows.length,
      });
  }
  // HateCheck per functionality: the share flagged.
  const hcS = toxScores.get(`${HC}|test`) as Scored;
  const groups = new Map<string, { flagged: number; n: number; positive: boolean }>();
  hcS.index.forEach((row, k) => {
    const r = hcTest[row] as Example;
    const g = groups.get(r.group ?? '') ?? { flagged: 0, n: 0, positive: r.positive };
    g.n++;
    if ((hcS.scores[k] as number) >= 0.5) g.flagged++;
    groups.set(r.group ?? '', g);
  });
  for (const [g, v] of [...groups].sort()) {
    figures.push({
      section: 'toxicity',
      dataset: `hatecheck: ${g}`,
      split: 'test',
      check: 'toxicity',
      n: v.n,
      metric: 'flagged@0.5',
      value: v.flagged / v.n,
      note: v.positive ? 'toxic: want high' : 'not toxic: want low',
    });
  }

  // The word model alone (offline-v12's reading: no sentence embeddings), at its own flag.
  for (const [name, split, rows] of toxSets) {
    const s = await scoreAll(wordLevelEvalJudge, 'toxicity', rows);
    figures.push(...classification('toxicity component: word model alone', name, split, 'toxicity', s, 0.5));
  }

  // The imported model alone, as its package scores a text (whole text, its own 0.5).
  for (const [name, split, rows] of toxSets) {
    const s: Scored = {
      scores: rows.map((r) => profanityProbability(r.response)),
      labels: rows.map((r) => r.positive),
      index: rows.map((_, i) => i),
      abstained: 0,
      reasons: new Set(),
    };
    figures.push(...classification('toxicity component: alt-profanity-check alone', name, split, 'toxicity', s, 0.5));
  }
  return {
    figures,
    davTest,
    davAll,
    davS: toxScores.get(`${DAV}|test`) as Scored,
    hcS,
    ethS: toxScores.get('ethos youtube/reddit comments (NEVER seen: held-out source)|all') as Scored,
    olidS: toxScores.get(`${OLID_TEST}|all`) as Scored,
  };
}
