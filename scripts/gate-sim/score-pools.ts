/**
 * The score pools of the gate simulation: the offline judge's scores of every right and every
 * hallucinated answer of halueval/qa_one-turn.jsonl (prompt = question, context = knowledge), one
 * triple per answer: quality overall, hallucination flag (score ≥ 0.5) and toxicity flag
 * (toxicity ≥ 0.5).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { offlineJudge } from '../../domain/judge/offline-judge.js';
import { resolveDataDir } from '../../stack/sim/collector-simulator.js';

export interface Triple {
  quality: number;
  hallucination: 0 | 1;
  toxicity: 0 | 1;
}

export function defaultDataDir(): string {
  return resolveDataDir().dir;
}

function judgeTriple(prompt: string, context: string, response: string): Triple {
  const input = { prompt, context, response };
  return {
    quality: offlineJudge('quality', input).overall,
    hallucination: offlineJudge('hallucination', input).score >= 0.5 ? 1 : 0,
    toxicity: offlineJudge('toxicity', input).toxicity >= 0.5 ? 1 : 0,
  };
}

const pools = new Map<string, { right: Triple[]; hallucinated: Triple[] }>();

/** Judge scores of the right and the hallucinated answers (cached per file; the judge is deterministic). */
export function loadScorePools(dataDir: string): { file: string; right: Triple[]; hallucinated: Triple[] } {
  const file = path.join(dataDir, 'halueval', 'qa_one-turn.jsonl');
  const cached = pools.get(file);
  if (cached) return { file, ...cached };
  const right: Triple[] = [];
  const hallucinated: Triple[] = [];
  let malformed = 0;
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    if (!line.trim()) continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      malformed++;
      continue;
    }
    const { knowledge: k, question: q, right_answer: ra, hallucinated_answer: ha } = o ?? {};
    if (typeof k !== 'string' || typeof q !== 'string' || typeof ra !== 'string' || typeof ha !== 'string') {
      malformed++;
      continue;
    }
    right.push(judgeTriple(q, k, ra));
    hallucinated.push(judgeTriple(q, k, ha));
  }
  if (malformed > 0) process.stderr.write(`gate-sim: skipped ${malformed} malformed record(s) in ${file}\n`);
  if (right.length === 0) throw new Error(`gate-sim: no usable records in ${file}`);
  pools.set(file, { right, hallucinated });
  return { file, right, hallucinated };
}

export function poolMeans(p: Triple[]) {
  let q = 0;
  let h = 0;
  let t = 0;
  for (const x of p) {
    q += x.quality;
    h += x.hallucination;
    t += x.toxicity;
  }
  return { n: p.length, quality: q / p.length, hallucinationRate: h / p.length, toxicityRate: t / p.length };
}
