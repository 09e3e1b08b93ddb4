/**
 * Trains the offline toxicity model (domain/judge/toxicity-model.ts) and writes its weights to
 * domain/judge/toxicity-model.data.ts.
 *
 *   npm run train:toxicity [-- --data DIR] [--dry-run]
 *
 * Deterministic: the same data gives the same weights (fixed split, fixed seed, no clock).
 *
 * Data (all shipped under data/, licences in data/README.md), split by scripts/eval/datasets.ts:
 * - train: the train splits (60 %) of Davidson et al. (tweets; hate or offensive = positive), the
 *   Jigsaw sample (Wikipedia talk comments; toxic = positive), the HateCheck templates (split by
 *   template, so no test template is seen; toxic as relabelled in datasets.ts) and the HaluEval texts
 *   (user queries, assistant responses, questions, answers: all negatives), and OLID's train file
 *   (tweets; offensive = positive). Each source carries a fixed share of the total weight
 *   (SOURCE_SHARES, or --shares), split evenly between its classes, so the small sources count;
 * - tune: the tune splits (20 %) of the same sources and OLID's validation file: used only to choose
 *   the flag threshold, which is mapped to 0.5;
 * - never read here: the test splits, OLID's test file, the Ethos sample (the held-out source) and
 *   the hand-written sanity set.
 * The VADER lexicon (MIT) provides the negative-word feature. The imported alt-profanity-check model
 * (MIT; domain/judge/profanity-model.ts) provides one more dense feature, its log-odds: it is a model
 * trained by others on about 200,000 texts that include all of Davidson et al. and Jigsaw comments,
 * so on those two sources its feature is read in-sample, on every split (see data/README.md).
 *
 * Prints the training set sizes, the features kept and the tune-split figures.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../common/random.js';
import { auroc } from '../domain/judge/eval-metrics.js';
import { DENSE_FEATURES, denseFeatures, PROFANITY_FEATURE, sparseFeatures, tokensProfanity } from '../domain/judge/toxicity-features.js';
import { combine, segmentReadings, type SegmentReading, type ToxicityModel } from '../domain/judge/toxicity-model.js';
import { normalizeForToxicity } from '../domain/judge/toxicity-text.js';
import {
  loadDavidson,
  loadHaluEvalClean,
  loadHateCheck,
  loadJigsaw,
  loadOlid,
  loadVaderNegative,
  olidSplitOf,
  splitOf,
  type Example,
  type Split,
} from './eval/datasets.js';

export const TOXICITY_MODEL_VERSION = 'toxicity-lr-v4';

/** The dense features in training order: the lexicon features, then the imported model's. */
const DENSE_NAMES = [...DENSE_FEATURES, PROFANITY_FEATURE] as const;

const EPOCHS = 8;
const LEARNING_RATE = 0.2;
const L2 = 2e-5;
const MIN_DOC_FREQ = 3;
const PRUNE_BELOW = 0.005;
const SEED = 20240611;

interface Doc {
  sparse: number[];
  dense: number[];
  y: 0 | 1;
  w: number;
}

function logitFromParts(bias: number, weights: Float64Array, dense: Float64Array, doc: Doc): number {
  let z = bias;
  for (const f of doc.sparse) z += weights[f] as number;
  for (let k = 0; k < doc.dense.length; k++) z += (dense[k] as number) * (doc.dense[k] as number);
  return z;
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Share of the total training weight each source carries (split evenly between its classes). */
export const SOURCE_SHARES: Readonly<Record<string, number>> = { davidson: 0.3, jigsaw: 0.2, hatecheck: 0.15, halueval: 0.15, olid: 0.2 };

/** The labelled sources, each with the split function that decides train / tune / test. */
export function toxicitySources(dataDir: string): Record<string, Example[]> {
  return {
    davidson: loadDavidson(dataDir).rows,
    jigsaw: loadJigsaw(dataDir).rows,
    hatecheck: loadHateCheck(dataDir).rows,
    halueval: loadHaluEvalClean(dataDir).rows,
    olid: [...loadOlid(dataDir, 'train').rows, ...loadOlid(dataDir, 'val').rows],
  };
}

/** The split of a source's record: OLID's by its file, the others' by hash (HaluEval's texts keep their historical key). */
export function sourceSplitOf(source: string, id: string): Split {
  if (source === 'olid') return olidSplitOf(id);
  return splitOf(source === 'halueval' ? 'halueval-clean' : source, id);
}

export function trainToxicity(
  dataDir: string,
  log: (s: string) => void = console.log,
  shares: Readonly<Record<string, number>> = SOURCE_SHARES,
): ToxicityModel {
  const negative = loadVaderNegative(dataDir);
  const sources = toxicitySources(dataDir);
  const train: { ex: Example; set: string }[] = [];
  for (const [set, rows] of Object.entries(sources))
    for (const ex of rows) if (sourceSplitOf(set, ex.id) === 'train') train.push({ ex, set });
  const pos = train.filter((t) => t.ex.positive).length;
  const neg = train.length - pos;
  const bySet = Object.keys(sources).map((k) => {
    const rows = train.filter((t) => t.set === k);
    const p = rows.filter((t) => t.ex.positive).length;
    return { k, p, n: rows.length - p };
  });
  log(`train: ${train.length} texts (${pos} toxic, ${neg} not; ${bySet.map((b) => `${b.k} ${b.p}+${b.n}`).join(', ')})`);
  const weightOf = (set: string, positive: boolean): number => {
    const b = bySet.find((x) => x.k === set) as { p: number; n: number };
    const share = (shares[set] ?? 0) * train.length;
    const classes = (b.p > 0 ? 1 : 0) + (b.n > 0 ? 1 : 0);
    return share / classes / (positive ? b.p : b.n);
  };

  // Vocabulary: sparse features seen in at least MIN_DOC_FREQ training texts.
  const tokenised = train.map((t) => normalizeForToxicity(t.ex.response));
  const df = new Map<string, number>();
  const featLists = tokenised.map((toks) => sparseFeatures(toks));
  for (const fl of featLists) for (const f of new Set(fl)) df.set(f, (df.get(f) ?? 0) + 1);
  const vocab = [...df.entries()]
    .filter(([, n]) => n >= MIN_DOC_FREQ)
    .map(([f]) => f)
    .sort();
  const index = new Map(vocab.map((f, i) => [f, i] as const));
  log(`features: ${vocab.length} sparse (seen in >= ${MIN_DOC_FREQ} texts) + ${DENSE_NAMES.length} dense`);

  // Class weights: each class carries half of the total weight.
  const docs: Doc[] = train.map((t, i) => {
    const d = denseFeatures(tokenised[i] as string[], negative);
    return {
      sparse: (featLists[i] as string[]).map((f) => index.get(f)).filter((x): x is number => x !== undefined),
      dense: [...DENSE_FEATURES.map((k) => d[k]), tokensProfanity(tokenised[i] as string[]).feature],
      y: t.ex.positive ? 1 : 0,
      w: weightOf(t.set, t.ex.positive),
    };
  });

  // Logistic regression, AdaGrad SGD with L2 on the sparse weights, fixed shuffle per epoch.
  const weights = new Float64Array(vocab.length);
  const g2 = new Float64Array(vocab.length).fill(1e-8);
  const dense = new Float64Array(DENSE_NAMES.length);
  const g2d = new Float64Array(DENSE_NAMES.length).fill(1e-8);
  let bias = 0;
  let g2b = 1e-8;
  const rand = mulberry32(SEED);
  const order = docs.map((_, i) => i);
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    let loss = 0;
    for (const k of order) {
      const doc = docs[k] as Doc;
      const p = sigmoid(logitFromParts(bias, weights, dense, doc));
      const err = (p - doc.y) * doc.w;
      loss += -doc.w * (doc.y ? Math.log(Math.max(p, 1e-12)) : Math.log(Math.max(1 - p, 1e-12)));
      for (const f of doc.sparse) {
        const g = err + L2 * (weights[f] as number) * docs.length;
        g2[f] = (g2[f] as number) + g * g;
        weights[f] = (weights[f] as number) - (LEARNING_RATE * g) / Math.sqrt(g2[f] as number);
      }
      for (let d = 0; d < dense.length; d++) {
        const g = err * (doc.dense[d] as number);
        g2d[d] = (g2d[d] as number) + g * g;
        dense[d] = (dense[d] as number) - (LEARNING_RATE * g) / Math.sqrt(g2d[d] as number);
      }
      g2b += err * err;
      bias -= (LEARNING_RATE * err) / Math.sqrt(g2b);
    }
    log(`epoch ${epoch + 1}: mean weighted log-loss ${(loss / docs.length).toFixed(4)}`);
  }

  const kept: Record<string, number> = {};
  let keptCount = 0;
  for (let i = 0; i < vocab.length; i++) {
    const w = weights[i] as number;
    if (Math.abs(w) >= PRUNE_BELOW) {
      kept[vocab[i] as string] = Math.round(w * 10000) / 10000;
      keptCount++;
    }
  }
  const usedNegative: Record<string, number> = {};
  for (const [w, v] of Object.entries(negative)) if (v <= -1.5) usedNegative[w] = v;
  const model: ToxicityModel = {
    version: TOXICITY_MODEL_VERSION,
    bias: Math.round(bias * 10000) / 10000,
    offset: 0,
    weights: kept,
    dense: Object.fromEntries(DENSE_NAMES.map((k, i) => [k, Math.round((dense[i] as number) * 10000) / 10000])),
    negative: usedNegative,
  };
  log(`kept ${keptCount} sparse weights with |w| >= ${PRUNE_BELOW}; dense weights ${JSON.stringify(model.dense)}; bias ${model.bias}`);

  // Threshold on the tune split: the offset (the logit mapped to 0.5) that maximises the mean
  // balanced accuracy of the combined score (model and targeted-abuse rules) over the tune splits of
  // every training source (HaluEval: negatives only, so specificity).
  const tuneSets: [string, Example[]][] = Object.entries(sources).map(([set, rows]) => [
    `${set} tune`,
    rows.filter((e) => sourceSplitOf(set, e.id) === 'tune'),
  ]);
  const readings = tuneSets.map(([name, rows]) => ({
    name,
    r: rows.map((row) => segmentReadings(row.response, model).map((x) => x.reading)),
    y: rows.map((r) => r.positive),
  }));
  const scoreAt = (rs: SegmentReading[], offset: number) => rs.reduce((m, r) => Math.max(m, combine(r, offset)), 0);
  let bestT = 0;
  let bestObj = -1;
  for (let t = -2; t <= 8.0001; t += 0.05) {
    const parts = readings.map((s) => {
      let tp = 0,
        fn = 0,
        tn = 0,
        fp = 0;
      s.r.forEach((rs, i) => {
        const p = scoreAt(rs, t) >= 0.5;
        if (s.y[i]) p ? tp++ : fn++;
        else p ? fp++ : tn++;
      });
      const tpr = tp + fn ? tp / (tp + fn) : NaN;
      const tnr = tn + fp ? tn / (tn + fp) : NaN;
      return Number.isNaN(tpr) ? tnr : (tpr + tnr) / 2;
    });
    const obj = parts.reduce((a, b) => a + b, 0) / parts.length;
    if (obj > bestObj + 1e-12) {
      bestObj = obj;
      bestT = Math.round(t * 100) / 100;
    }
  }
  for (const s of readings) {
    const a = auroc(
      s.r.map((rs) => scoreAt(rs, bestT)),
      s.y,
    );
    log(`${s.name}: n ${s.r.length}, AUROC ${Number.isNaN(a) ? 'n/a (one class)' : a.toFixed(3)}`);
  }
  model.offset = Math.round(bestT * 10000) / 10000;
  log(`flag threshold: logit ${model.offset} (mean balanced accuracy on the tune sets ${bestObj.toFixed(3)}), mapped to 0.5`);
  return model;
}

export function writeModelModule(model: ToxicityModel, file: string): void {
  const json = JSON.stringify(model);
  const body =
    '// Generated by scripts/train-toxicity.ts (npm run train:toxicity). Do not edit by hand.\n' +
    `// ${model.version}: ${Object.keys(model.weights).length} sparse weights, ${DENSE_NAMES.length} dense; word list from VADER (MIT, data/vader);\n` +
    '// the altProfanity feature reads alt-profanity-check (MIT, domain/judge/profanity-model.ts).\n' +
    `export const TOXICITY_MODEL_JSON = ${JSON.stringify(json)};\n`;
  writeFileSync(file, body);
}

/** `davidson=0.3,olid=0.2,...`: every source named, shares summing to 1 (to try other weightings). */
function parseShares(arg: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of arg.split(',')) {
    const [k, v] = part.split('=');
    if (!k || !(k in SOURCE_SHARES) || !Number.isFinite(Number(v)) || Number(v) < 0) {
      console.error(`train-toxicity: --shares wants source=share for each of ${Object.keys(SOURCE_SHARES).join(', ')}; got '${part}'`);
      process.exit(2);
    }
    out[k] = Number(v);
  }
  const sum = Object.values(out).reduce((a, b) => a + b, 0);
  if (Object.keys(out).length !== Object.keys(SOURCE_SHARES).length || Math.abs(sum - 1) > 1e-6) {
    console.error(
      `train-toxicity: --shares must name every source (${Object.keys(SOURCE_SHARES).join(', ')}) with shares summing to 1 (sum ${sum})`,
    );
    process.exit(2);
  }
  return out;
}

function main(): void {
  const here = path.dirname(fileURLToPath(import.meta.url));
  let dataDir = path.resolve(here, '..', 'data');
  let dryRun = false;
  let shares = SOURCE_SHARES;
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--data') dataDir = path.resolve(argv[++i] ?? '');
    else if (a === '--dry-run') dryRun = true;
    else if (a === '--shares') shares = parseShares(argv[++i] ?? '');
    else {
      console.error(`train-toxicity: unknown argument '${a}' (usage: [--data DIR] [--dry-run] [--shares source=share,...])`);
      process.exit(2);
    }
  }
  const t0 = performance.now();
  const model = trainToxicity(dataDir, console.log, shares);
  const out = path.resolve(here, '..', 'domain', 'judge', 'toxicity-model.data.ts');
  if (!dryRun) {
    writeModelModule(model, out);
    console.log(`wrote ${path.relative(process.cwd(), out)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
