/**
 * Trains the head of the offline toxicity check's contextual reading
 * (domain/judge/toxicity-context.ts) and writes it to domain/judge/toxicity-context.data.ts.
 *
 *   npm run train:toxicity-context [-- --data DIR] [--dry-run]
 *
 * Deterministic: the same data and model give the same head (Newton's method from zero, no
 * sampling, no clock).
 *
 * - train: OLID's train file (11,916 tweets, offensive = positive; 80 % of the weight) and the
 *   train split of HaluEval's texts (all negatives; 20 %), each text embedded whole by the shipped
 *   model; L2-regularised logistic regression (sklearn's C = 1).
 * - tune: OLID's validation file, read as the check reads it (every prefix, contextReading): beta,
 *   the head's weight against the word model's logit, is the value of BETAS with the best AUROC,
 *   and the flag is set where the validation file's recall is FLAG_RECALL.
 * - never read here: OLID's test file, the test splits, Ethos and the sanity set.
 *
 * Chosen on the tune file, against other readings (see README, "The offline judge"): the head
 * alone on OLID gives about 0.76 AUROC, the word model 0.82, both over every prefix 0.85.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { auroc } from '../domain/judge/eval-metrics.js';
import { wordLogit } from '../domain/judge/offline-toxicity.js';
import { type ContextHead, EMBEDDING_DIM, headLogit, readInContext, type SentenceEncoder } from '../domain/judge/toxicity-context.js';
import { loadSentenceEncoder } from '../activities/judge/sentence-encoder.js';
import { resolveDataDir } from '../stack/sim/collector-simulator.js';
import { loadHaluEvalClean, loadOlid, splitOf, type Example } from './eval/datasets.js';

export const TOXICITY_CONTEXT_VERSION = 'toxicity-context-v1';
const SHARES = { olid: 0.8, halueval: 0.2 } as const;
const BETAS = [0.2, 0.3, 0.4, 0.6, 0.8, 1.0];
/** Recall on OLID's validation file at the flag: the target of 0.6 and a margin. */
const FLAG_RECALL = 0.62;
const NEWTON_STEPS = 12;

/**
 * L2-regularised logistic regression by Newton's method with a backtracking line search (bias not
 * regularised): sklearn's objective with C = 1, sum of weighted log-losses plus l2/2 |w|^2.
 */
export function fitLogistic(x: Float32Array, y: readonly number[], w: readonly number[], l2 = 1): { bias: number; weights: number[] } {
  const n = y.length;
  const d = EMBEDDING_DIM + 1; // last coefficient: the bias
  const row = (i: number, k: number) => (k === EMBEDDING_DIM ? 1 : (x[i * EMBEDDING_DIM + k] as number));
  const logit = (theta: Float64Array, i: number) => {
    let z = theta[EMBEDDING_DIM] as number;
    for (let k = 0; k < EMBEDDING_DIM; k++) z += (theta[k] as number) * (x[i * EMBEDDING_DIM + k] as number);
    return z;
  };
  const objective = (theta: Float64Array) => {
    let f = 0;
    for (let k = 0; k < EMBEDDING_DIM; k++) f += (l2 / 2) * (theta[k] as number) ** 2;
    for (let i = 0; i < n; i++) {
      const z = logit(theta, i);
      // log(1 + e^z) - y z, computed without overflow.
      f += (w[i] as number) * ((z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - (y[i] as number) * z);
    }
    return f;
  };
  let theta = new Float64Array(d);
  let f0 = objective(theta);
  for (let step = 0; step < NEWTON_STEPS; step++) {
    const g = new Float64Array(d);
    const h = new Float64Array(d * d);
    for (let k = 0; k < EMBEDDING_DIM; k++) {
      g[k] = l2 * (theta[k] as number);
      h[k * d + k] = l2;
    }
    h[d * d - 1] = 1e-9;
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-logit(theta, i)));
      const wi = w[i] as number;
      const r = wi * (p - (y[i] as number));
      const s = wi * p * (1 - p);
      for (let a = 0; a < d; a++) {
        const xa = row(i, a);
        g[a] = (g[a] as number) + r * xa;
        const sa = s * xa;
        for (let b = 0; b <= a; b++) h[a * d + b] = (h[a * d + b] as number) + sa * row(i, b);
      }
    }
    // Solve H delta = g by Cholesky (H is symmetric positive definite; lower triangle filled).
    const L = new Float64Array(d * d);
    for (let a = 0; a < d; a++)
      for (let b = 0; b <= a; b++) {
        let s = h[a * d + b] as number;
        for (let k = 0; k < b; k++) s -= (L[a * d + k] as number) * (L[b * d + k] as number);
        L[a * d + b] = a === b ? Math.sqrt(s) : s / (L[b * d + b] as number);
      }
    const t = new Float64Array(d);
    for (let a = 0; a < d; a++) {
      let s = g[a] as number;
      for (let k = 0; k < a; k++) s -= (L[a * d + k] as number) * (t[k] as number);
      t[a] = s / (L[a * d + a] as number);
    }
    const delta = new Float64Array(d);
    for (let a = d - 1; a >= 0; a--) {
      let s = t[a] as number;
      for (let k = a + 1; k < d; k++) s -= (L[k * d + a] as number) * (delta[k] as number);
      delta[a] = s / (L[a * d + a] as number);
    }
    // Halve the step until the objective falls.
    let scale = 1;
    let next = theta;
    let f1 = f0;
    for (let tries = 0; tries < 30; tries++, scale /= 2) {
      next = theta.map((v, a) => v - scale * (delta[a] as number));
      f1 = objective(next);
      if (Number.isFinite(f1) && f1 <= f0) break;
    }
    if (!(f1 <= f0)) break;
    theta = next;
    const done = f0 - f1 < 1e-9 * Math.max(1, Math.abs(f0));
    f0 = f1;
    if (done) break;
  }
  return { bias: theta[EMBEDDING_DIM] as number, weights: Array.from(theta.subarray(0, EMBEDDING_DIM)) };
}

/** The contextual logits (before the offset) of texts, for a head with the given beta. */
async function readings(rows: readonly Example[], encoder: SentenceEncoder, head: ContextHead): Promise<number[]> {
  const out: number[] = [];
  for (const r of rows) {
    const c = await readInContext(r.response, (s) => wordLogit(r.prompt, s), encoder, { ...head, offset: 0 });
    out.push(c ? c.logit : Number.NEGATIVE_INFINITY);
  }
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--data');
  const dataDir = at >= 0 && args[at + 1] ? path.resolve(args[at + 1] as string) : resolveDataDir().dir;
  const dryRun = args.includes('--dry-run');
  const encoder = await loadSentenceEncoder();

  const olid = loadOlid(dataDir, 'train').rows;
  const halu = loadHaluEvalClean(dataDir).rows.filter((e) => splitOf('halueval-clean', e.id) === 'train');
  const rows = [...olid, ...halu];
  const y = rows.map((r) => (r.positive ? 1 : 0));
  const raw = [...olid.map(() => SHARES.olid / olid.length), ...halu.map(() => SHARES.halueval / halu.length)];
  const mean = raw.reduce((a, b) => a + b, 0) / raw.length;
  const w = raw.map((v) => v / mean);
  console.log(
    `train: ${olid.length} OLID tweets (${y.filter((v, i) => v && i < olid.length).length} offensive), ${halu.length} HaluEval texts`,
  );
  let t0 = Date.now();
  const x = await encoder.embed(rows.map((r) => r.response));
  console.log(`embedded in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  t0 = Date.now();
  const fit = fitLogistic(x, y, w);
  const alone = rows.map((_, i) => headLogit(fit, x, i));
  console.log(
    `fitted in ${((Date.now() - t0) / 1000).toFixed(0)} s; train AUROC of the head alone ${auroc(alone, y.map(Boolean)).toFixed(3)}`,
  );

  const val = loadOlid(dataDir, 'val').rows;
  const labels = val.map((r) => r.positive);
  let best: { beta: number; auc: number; z: number[] } | undefined;
  for (const beta of BETAS) {
    const z = await readings(val, encoder, { version: TOXICITY_CONTEXT_VERSION, beta, offset: 0, ...fit });
    const auc = auroc(z, labels);
    console.log(`OLID validation, beta ${beta}: AUROC ${auc.toFixed(4)}`);
    if (!best || auc > best.auc) best = { beta, auc, z };
  }
  if (!best) throw new Error('no beta');
  const pos = best.z.filter((_, i) => labels[i]).sort((a, b) => b - a);
  const offset = pos[Math.ceil(FLAG_RECALL * pos.length) - 1] as number;
  const neg = best.z.filter((_, i) => !labels[i]);
  console.log(
    `chosen beta ${best.beta}, flag at logit ${offset.toFixed(4)}: OLID validation recall ${(pos.filter((v) => v >= offset).length / pos.length).toFixed(3)}, FPR ${(neg.filter((v) => v >= offset).length / neg.length).toFixed(3)}`,
  );
  const head: ContextHead = {
    version: TOXICITY_CONTEXT_VERSION,
    beta: best.beta,
    offset: Math.round(offset * 1e6) / 1e6,
    bias: Math.round(fit.bias * 1e6) / 1e6,
    weights: fit.weights.map((v) => Math.round(v * 1e6) / 1e6),
  };
  if (dryRun) return;
  const file = fileURLToPath(new URL('../domain/judge/toxicity-context.data.ts', import.meta.url));
  writeFileSync(
    file,
    `// Generated by scripts/train-toxicity-context.ts (${TOXICITY_CONTEXT_VERSION}); do not edit.\nexport const TOXICITY_CONTEXT_HEAD_JSON = ${JSON.stringify(JSON.stringify(head))};\n`,
  );
  console.log(`wrote ${file}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  main().catch((e: unknown) => {
    console.error(`train-toxicity-context: ${(e as Error).message}`);
    process.exit(1);
  });
