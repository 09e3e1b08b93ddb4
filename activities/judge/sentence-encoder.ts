/**
 * The sentence-embedding model of the offline toxicity check's contextual reading
 * (domain/judge/toxicity-context.ts): all-MiniLM-L6-v2 as int8 ONNX (data/all-minilm-l6-v2/,
 * exported by scripts/export-sentence-model.py), run by onnxruntime-node (CPU) with the model's
 * own WordPiece tokenizer (@huggingface/tokenizers). Token ids and embeddings match Python's
 * (test/unit/toxicity-context.test.ts against test/fixtures/sentence-model-parity.json).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { EMBEDDING_DIM, type SentenceEncoder } from '../../domain/judge/toxicity-context.js';

/** Token limit of one model input (the export's fixture uses the same). */
export const MAX_TOKENS = 128;

export const SENTENCE_MODEL_DIR = fileURLToPath(new URL('../../data/all-minilm-l6-v2/', import.meta.url));

const BATCH = 64;
const CACHE_MAX = 50_000;

/**
 * Loads the model and tokenizer from `dir`. One inference thread: workers judge several
 * interactions at once, each on its own thread of onnxruntime's pool. Embeddings are cached by
 * token ids (bounded), as the short prefixes recur across texts.
 */
export async function loadSentenceEncoder(dir: string = SENTENCE_MODEL_DIR): Promise<SentenceEncoder> {
  const file = (name: string) => {
    const p = path.join(dir, name);
    if (!existsSync(p))
      throw new Error(
        `the offline toxicity check needs ${p}; it is part of the repository (regenerate with npm run export:sentence-model)`,
      );
    return p;
  };
  const tokenizer = new Tokenizer(
    JSON.parse(readFileSync(file('tokenizer.json'), 'utf8')),
    JSON.parse(readFileSync(file('tokenizer_config.json'), 'utf8')),
  );
  const session = await ort.InferenceSession.create(file('model.int8.onnx'), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionProviders: ['cpu'],
  });
  const sep = tokenizer.token_to_id('[SEP]');
  if (sep === undefined) throw new Error(`${dir}tokenizer.json has no [SEP] token`);
  const cache = new Map<string, Float32Array>();
  const ids = (text: string): number[] => {
    const e = tokenizer.encode(text).ids;
    return e.length <= MAX_TOKENS ? e : [...e.slice(0, MAX_TOKENS - 1), sep];
  };
  const run = async (batch: number[][]): Promise<Float32Array> => {
    const len = Math.max(...batch.map((b) => b.length));
    const inputIds = new BigInt64Array(batch.length * len);
    const mask = new BigInt64Array(batch.length * len);
    batch.forEach((b, i) => {
      for (let j = 0; j < b.length; j++) {
        inputIds[i * len + j] = BigInt(b[j] as number);
        mask[i * len + j] = 1n;
      }
    });
    const out = await session.run({
      input_ids: new ort.Tensor('int64', inputIds, [batch.length, len]),
      attention_mask: new ort.Tensor('int64', mask, [batch.length, len]),
    });
    return (out.embedding as ort.Tensor).data as Float32Array;
  };
  return {
    ids,
    async embed(texts) {
      const result = new Float32Array(texts.length * EMBEDDING_DIM);
      // Keyed by token ids: texts that differ only past the token limit are one input.
      const todo = new Map<string, { ids: number[]; rows: number[] }>();
      texts.forEach((t, i) => {
        const tokens = ids(t);
        const key = tokens.join(',');
        const hit = cache.get(key);
        if (hit) result.set(hit, i * EMBEDDING_DIM);
        else {
          const entry = todo.get(key) ?? { ids: tokens, rows: [] };
          entry.rows.push(i);
          todo.set(key, entry);
        }
      });
      // Similar lengths batched together: less padding.
      const pending = [...todo].sort((a, b) => a[1].ids.length - b[1].ids.length);
      for (let s = 0; s < pending.length; s += BATCH) {
        const chunk = pending.slice(s, s + BATCH);
        const e = await run(chunk.map(([, c]) => c.ids));
        chunk.forEach(([key, c], j) => {
          const v = e.slice(j * EMBEDDING_DIM, (j + 1) * EMBEDDING_DIM);
          if (cache.size >= CACHE_MAX) cache.clear();
          cache.set(key, v);
          for (const i of c.rows) result.set(v, i * EMBEDDING_DIM);
        });
      }
      return result;
    },
  };
}

let shared: Promise<SentenceEncoder> | undefined;

/** The process's encoder, loaded on first use. A failed load is not kept, so the next call retries. */
export function sentenceEncoder(): Promise<SentenceEncoder> {
  shared ??= loadSentenceEncoder().catch((e: unknown) => {
    shared = undefined;
    throw e;
  });
  return shared;
}
