/** Inputs, outputs and pure helpers of the collection workflows (workflow-safe). */
import { z } from 'zod';
import { CHECKS, idSchema, type Check } from '../../common/types.js';

export const SAMPLE_LIMIT = 20;

const count = z.number().min(0);

/**
 * Totals a run hands to the next one across continue-as-new. Checked like any input (a run may be
 * started by hand with one): fields of the wrong type are refused, samples cut to SAMPLE_LIMIT.
 */
const carrySchema = z.object({
  pages: count.optional(),
  fetched: count.optional(),
  stored: count.optional(),
  bad: count.optional(),
  sampled: count.optional(),
  conflicts: count.optional(),
  unscoredForBudget: count.optional(),
  coverageNote: z.string().max(1000).optional(),
  scored: count.optional(),
  failed: count.optional(),
  skipped: count.optional(),
  abstained: count.optional(),
  promptTokens: count.optional(),
  completionTokens: count.optional(),
  cachedTokens: count.optional(),
  reasoningTokens: count.optional(),
  llmCalls: count.optional(),
  versions: z.array(z.string().max(1000)).max(10_000).optional(),
  badSamples: z
    .array(z.object({ position: z.string(), reason: z.string(), id: z.string().optional() }))
    .transform((xs) => xs.slice(0, SAMPLE_LIMIT))
    .optional(),
  failureSamples: z
    .array(z.object({ id: z.string(), check: z.enum(CHECKS), reason: z.string() }))
    .transform((xs) => xs.slice(0, SAMPLE_LIMIT))
    .optional(),
});

export const collectionCycleInputSchema = z.strictObject({
  deployment: idSchema('deployment'),
  /** Interactions fetched from the source per page (one fetch activity; their ids pass through history). */
  pageSize: z.number().int().min(1).max(1000).default(1000),
  /** Interactions per scoring activity. */
  batchSize: z.number().int().min(1).max(1000).default(250),
  /** Scoring activities in flight at once (spread over every worker polling the queue). */
  maxConcurrentBatches: z.number().int().min(1).max(50).default(4),
  /** Upper bound of interactions one cycle takes; the rest waits for the next cycle. */
  maxInteractions: z.number().int().min(1).max(10_000_000).default(100_000),
  /** Pages per workflow run before continue-as-new (also when the server suggests it). */
  pagesPerRun: z.number().int().min(1).max(1000).default(20),
  checks: z
    .array(z.enum(CHECKS))
    .min(1)
    // A check named twice would be judged (and paid) twice.
    .transform((xs) => [...new Set(xs)])
    .default([...CHECKS]),
  /**
   * Minutes of LLM budget a cycle may spend (its cadence, the schedule's 15 minutes by default):
   * a backlog larger than that budget covers is scored on a deterministic sample.
   */
  budgetMinutes: z.number().min(1).max(1440).default(15),
  /** Carried across continue-as-new; not for callers. */
  carry: carrySchema.optional(),
  /** When the cycle's LLM budget window ends (epoch ms; set by the first run); not for callers. */
  windowEndsAt: z.number().int().min(0).optional(),
  /** When the cycle's first run began its work (epoch ms; set by the first run); not for callers. */
  startedAt: z.number().int().min(0).optional(),
});
export type CollectionCycleInput = z.input<typeof collectionCycleInputSchema>;
export type CollectionCycleArgs = z.output<typeof collectionCycleInputSchema>;

export type JudgeMode = 'combined' | 'separate';

/** CycleSettings as a workflow input carries them (a child's input, a carry): checked like any input. */
export const cycleSettingsSchema = z.object({
  judge: z.string().min(1).max(200),
  promptVersions: z.object({ quality: z.string().max(200), hallucination: z.string().max(200), toxicity: z.string().max(200) }),
  judgeTaskQueue: z.string().min(1).max(1000),
  llmTimeoutSec: z.number().min(1).max(600),
  llmMaxRetries: z.number().int().min(0).max(20),
  mode: z.enum(['combined', 'separate']).optional(),
});

/** The input of scoreBatch (cycles recorded before SCORE_IN_ACTIVITIES start it). */
export const scoreBatchInputSchema = z.object({
  deployment: idSchema('deployment'),
  ids: z.array(z.string().min(1).max(1000)).max(1000),
  checks: z
    .array(z.enum(CHECKS))
    .min(1)
    .transform((xs) => [...new Set(xs)]),
  settings: cycleSettingsSchema,
});

/**
 * The model versions a cycle lists in its OptiModelVersion search attribute: the first ones that
 * fit in 1,500 bytes, within Temporal's 2 KB limit for one search attribute's value (a cycle over
 * more versions would otherwise fail its upsert). The result keeps them all.
 */
export function searchableVersions(versions: readonly string[]): string[] {
  const out: string[] = [];
  let bytes = 2;
  for (const v of versions) {
    bytes += new TextEncoder().encode(JSON.stringify(v)).length + 1;
    if (bytes > 1500) break;
    out.push(v);
  }
  return out;
}

/** Judge settings a cycle fixes once at its start (recorded in history, so replays agree). */
export interface CycleSettings {
  judge: string; // 'offline' or 'groq:<model>'
  promptVersions: Record<Check, string>;
  judgeTaskQueue: string;
  llmTimeoutSec: number;
  llmMaxRetries: number;
  /** LLM judge: one call per interaction for all checks, or one per check (absent in cycles recorded before). */
  mode?: JudgeMode;
}

export interface FailureSample {
  id: string;
  check: Check;
  reason: string;
}

export interface BadSample {
  position: string;
  reason: string;
  id?: string;
}

export interface BatchTotals {
  /** Checks scored (a row with status ok written). */
  scored: number;
  /** Checks recorded as failed, with their reason. */
  failed: number;
  /** Checks already stored before (a re-run or retried activity): not judged again. */
  skipped: number;
  /** Checks the judge cannot measure for that interaction (stored as abstained, with the reason). */
  abstained?: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens?: number;
  reasoningTokens?: number;
  /** HTTP requests to the LLM. */
  llmCalls?: number;
  failureSamples: FailureSample[];
}

export interface CycleTotals extends BatchTotals {
  pages: number;
  fetched: number;
  stored: number;
  bad: number;
  /** Interactions chosen for scoring (deployment sample rate and the LLM budget). */
  sampled: number;
  /** Records whose id was stored before with other content: the first copy is kept. */
  conflicts?: number;
  /** Interactions left unscored because the LLM budget of this cycle could not cover them. */
  unscoredForBudget?: number;
  /** Why coverage is below the deployment's sample rate, in words (e.g. the limit that bound it). */
  coverageNote?: string;
  versions: string[];
  badSamples: BadSample[];
}

/** A batch's totals before it judged anything (also the judging part of a cycle's or a backfill's). */
export const emptyBatchTotals = (): Required<BatchTotals> => ({
  scored: 0,
  failed: 0,
  skipped: 0,
  abstained: 0,
  promptTokens: 0,
  completionTokens: 0,
  cachedTokens: 0,
  reasoningTokens: 0,
  llmCalls: 0,
  failureSamples: [],
});

export const emptyTotals = (): Required<CycleTotals> => ({
  pages: 0,
  fetched: 0,
  stored: 0,
  bad: 0,
  sampled: 0,
  conflicts: 0,
  unscoredForBudget: 0,
  coverageNote: '',
  ...emptyBatchTotals(),
  versions: [],
  badSamples: [],
});

/** Totals carried across continue-as-new, completed with fields that runs recorded before lacked. */
export function carriedTotals(carry: unknown): Required<CycleTotals> {
  return { ...emptyTotals(), ...(carry && typeof carry === 'object' ? (carry as Partial<CycleTotals>) : {}) };
}

/** "scored 180 of 4,000 interactions (4.5 %), limited by the daily token budget" (empty when nothing was left out). */
export function coverageNote(selected: number, unscored: number, limitedBy: string): string {
  if (!unscored || !selected) return '';
  const scored = selected - unscored;
  const pct = Math.round((scored / selected) * 1000) / 10;
  const n = (x: number) => String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `scored ${n(scored)} of ${n(selected)} interactions (${pct} %), limited by the ${limitedBy}`;
}

export function addBatch(t: BatchTotals, b: BatchTotals): void {
  t.scored += b.scored;
  t.failed += b.failed;
  t.skipped += b.skipped;
  t.abstained = (t.abstained ?? 0) + (b.abstained ?? 0);
  t.promptTokens += b.promptTokens;
  t.completionTokens += b.completionTokens;
  t.cachedTokens = (t.cachedTokens ?? 0) + (b.cachedTokens ?? 0);
  t.reasoningTokens = (t.reasoningTokens ?? 0) + (b.reasoningTokens ?? 0);
  t.llmCalls = (t.llmCalls ?? 0) + (b.llmCalls ?? 0);
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
  /**
   * 'skipped': the cycle did not run because another cycle of the deployment holds its lease
   * (`heldBy`); nothing went wrong and nothing was collected. Absent: the cycle ran.
   */
  status?: 'skipped';
  /** The cycle holding the deployment's lease, when this one was skipped. */
  heldBy?: string;
  /** Why the cycle was skipped, in words (names the cycle holding the lease and until when). */
  note?: string;
  /** When the schedule meant the cycle to start, and when it began its work (ISO; absent for a manual cycle / older runs). */
  scheduledAt?: string;
  startedAt?: string;
}

/** Lateness below this is the ordinary delay of a schedule and a worker picking up work: not reported. */
export const LATE_AFTER_MS = 60_000;

/** "3 h 10 min", "12 min", "45 s": a duration in words, whole units, for notes. */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/**
 * How late a cycle began its work against the time its schedule meant it to: "started 3 h 10 min
 * after it was due", or '' when it was on time (below LATE_AFTER_MS), manual (no scheduled time)
 * or recorded before start times were (no start).
 */
export function latenessNote(scheduledAt: string | Date | null | undefined, startedAt: string | Date | null | undefined): string {
  if (!scheduledAt || !startedAt) return '';
  const late = new Date(startedAt).getTime() - new Date(scheduledAt).getTime();
  if (!Number.isFinite(late) || late < LATE_AFTER_MS) return '';
  return `started ${durationText(late)} after it was due`;
}

/**
 * Run `fn` over `items` with at most `limit` in flight, results in input order. Deterministic
 * (workflow-safe): a finished item starts the next one.
 */
export async function inParallel<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, lane));
  return out;
}
