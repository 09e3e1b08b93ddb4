/** Inputs, outputs and pure helpers of the collection workflows (workflow-safe). */
import { z } from 'zod';
import { CHECKS, idSchema, type Check } from '../../common/types.js';

export const collectionCycleInputSchema = z.object({
  deployment: idSchema('deployment'),
  /** Interactions fetched from the source per page (one fetch activity). */
  pageSize: z.number().int().min(1).max(2000).default(500),
  /** Interactions per scoreBatch child workflow. */
  batchSize: z.number().int().min(1).max(200).default(50),
  /** scoreBatch children in flight at once. */
  maxConcurrentBatches: z.number().int().min(1).max(50).default(4),
  /** Upper bound of interactions one cycle takes; the rest waits for the next cycle. */
  maxInteractions: z.number().int().min(1).max(10_000_000).default(100_000),
  /** Pages per workflow run before continue-as-new (also when the server suggests it). */
  pagesPerRun: z.number().int().min(1).max(1000).default(20),
  checks: z.array(z.enum(CHECKS)).min(1).default([...CHECKS]),
  /** Carried across continue-as-new; not for callers. */
  carry: z.unknown().optional(),
});
export type CollectionCycleInput = z.input<typeof collectionCycleInputSchema>;
export type CollectionCycleArgs = z.output<typeof collectionCycleInputSchema>;

/** Judge settings a cycle fixes once at its start (recorded in history, so replays agree). */
export interface CycleSettings {
  judge: string; // 'offline' or 'groq:<model>'
  promptVersions: Record<Check, string>;
  judgeTaskQueue: string;
  llmTimeoutSec: number;
  llmMaxRetries: number;
}

export interface BatchTotals {
  scored: number;
  failed: number;
  skipped: number;
  promptTokens: number;
  completionTokens: number;
  failureSamples: Array<{ id: string; check: Check; reason: string }>;
}

export interface CycleTotals extends BatchTotals {
  pages: number;
  fetched: number;
  stored: number;
  bad: number;
  sampled: number;
  versions: string[];
  badSamples: Array<{ position: string; reason: string; id?: string }>;
}

export const emptyTotals = (): CycleTotals => ({
  pages: 0,
  fetched: 0,
  stored: 0,
  bad: 0,
  sampled: 0,
  scored: 0,
  failed: 0,
  skipped: 0,
  promptTokens: 0,
  completionTokens: 0,
  versions: [],
  badSamples: [],
  failureSamples: [],
});

export const SAMPLE_LIMIT = 20;

export function addBatch(t: CycleTotals, b: BatchTotals): void {
  t.scored += b.scored;
  t.failed += b.failed;
  t.skipped += b.skipped;
  t.promptTokens += b.promptTokens;
  t.completionTokens += b.completionTokens;
  t.failureSamples = [...t.failureSamples, ...b.failureSamples].slice(0, SAMPLE_LIMIT);
}

export function chunk<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export interface CycleResult extends CycleTotals {
  cycleId: string;
  deployment: string;
  judge: string;
  cursor: string | null;
}
