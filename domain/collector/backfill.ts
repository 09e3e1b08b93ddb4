/**
 * Inputs, outputs and pure helpers of the backfill workflow (workflow-safe): scoring the stored
 * interactions of a time window that the current judge and prompt versions have not scored yet
 * (after a change of judge or prompt version, or a cycle the LLM's budget left partly unscored).
 */
import { z } from 'zod';
import { calendarDateExists, CHECKS, idSchema, parseUtcDate } from '../../common/types.js';
import {
  collectionCycleInputSchema,
  cycleSettingsSchema,
  emptyBatchTotals,
  SAMPLE_LIMIT,
  type BatchTotals,
  type CycleSettings,
} from './collection.js';

/** Interactions a backfill sends to the judge when its caller sets no limit. */
export const BACKFILL_DEFAULT_LIMIT = 10_000;
/** Most interactions one backfill may send to the judge (a larger window: start it again). */
export const BACKFILL_MAX_LIMIT = 1_000_000;
/** Interaction ids read from ClickHouse per page (one activity; the ids pass through history). */
export const BACKFILL_PAGE_SIZE = 1000;
/** Pages per workflow run before continue-as-new (also when the server suggests it). */
export const BACKFILL_PAGES_PER_RUN = 20;

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** An ISO-8601 date or date-time (UTC when it names no zone), as the CLI's isoArg accepts it. */
const isoInstant = (what: string) =>
  z
    .string({ error: `${what} must be an ISO-8601 date-time` })
    .max(64)
    .refine((v) => ISO_INSTANT.test(v.trim()) && calendarDateExists(v) && !Number.isNaN(parseUtcDate(v)), {
      message: `${what} must be an ISO-8601 date-time, e.g. 2026-11-25T10:00:00Z`,
    });

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Totals a run hands to the next one: checked like any input (a run may be started by hand with one). */
const backfillTotalsSchema = z.strictObject({
  pages: count,
  seen: count,
  notSampled: count,
  inCycle: count,
  alreadyScored: count,
  selected: count,
  unscoredForBudget: count,
  scored: count,
  failed: count,
  skipped: count,
  abstained: count,
  promptTokens: count,
  completionTokens: count,
  cachedTokens: count,
  reasoningTokens: count,
  llmCalls: count,
  failureSamples: z
    .array(z.object({ id: z.string().max(1000), check: z.enum(CHECKS), reason: z.string().max(2000) }))
    .max(10_000)
    .transform((xs) => xs.slice(0, SAMPLE_LIMIT)),
});

/** What a run carries across continue-as-new; not for callers. */
export const backfillCarrySchema = z.strictObject({
  /** The last interaction id taken (the keyset cursor): the next page starts after it. */
  after: z.string().min(1).max(1000).nullable(),
  /** The judge and prompt versions of the first run: one backfill scores for one judge. */
  settings: cycleSettingsSchema,
  /** When the first run began (epoch ms). */
  startedAt: z.number().int().min(0),
  totals: backfillTotalsSchema,
});
export type BackfillCarry = z.output<typeof backfillCarrySchema>;

export const backfillInputSchema = z
  .strictObject({
    deployment: idSchema('deployment'),
    /** Only interactions of this model version. */
    modelVersion: idSchema('modelVersion').optional(),
    /** The window on the interactions' timestamps: [from, to). */
    from: isoInstant('from'),
    /** Default: when the backfill starts (the workflow's time, recorded in history). */
    to: isoInstant('to').optional(),
    /** Most interactions sent to the judge (those missing a check); the rest waits for another backfill. */
    limit: z.number().int().min(1).max(BACKFILL_MAX_LIMIT).default(BACKFILL_DEFAULT_LIMIT),
    pageSize: z.number().int().min(1).max(1000).default(BACKFILL_PAGE_SIZE),
    /** Interactions per scoring activity and activities in flight: the cycle's settings and defaults. */
    batchSize: collectionCycleInputSchema.shape.batchSize,
    maxConcurrentBatches: collectionCycleInputSchema.shape.maxConcurrentBatches,
    pagesPerRun: z.number().int().min(1).max(1000).default(BACKFILL_PAGES_PER_RUN),
    checks: collectionCycleInputSchema.shape.checks,
    /** Carried across continue-as-new; not for callers. */
    carry: backfillCarrySchema.optional(),
  })
  .superRefine((v, ctx) => {
    if (v.to !== undefined && parseUtcDate(v.from) >= parseUtcDate(v.to)) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: `to (${v.to}) must be after from (${v.from})` });
    }
  });
export type BackfillInput = z.input<typeof backfillInputSchema>;

export interface BackfillTotals extends Required<BatchTotals> {
  /** Pages of ids read from ClickHouse. */
  pages: number;
  /** Interactions of the window read (each id once). */
  seen: number;
  /** Interactions left out by the deployment's sample rate (cycles do not score them either). */
  notSampled: number;
  /**
   * Interactions stored by the deployment's cycle that was running when their page was read: that
   * cycle scores them (a later backfill takes any it left).
   */
  inCycle: number;
  /** Interactions with every check already stored for this judge and these prompt versions: not sent to the judge. */
  alreadyScored: number;
  /** Interactions sent to the judge (missing at least one check); what the limit counts. */
  selected: number;
  /** Interactions not judged because the LLM's capacity ran out (the backfill stops then). */
  unscoredForBudget: number;
}

export const emptyBackfillTotals = (): BackfillTotals => ({
  pages: 0,
  seen: 0,
  notSampled: 0,
  inCycle: 0,
  alreadyScored: 0,
  selected: 0,
  unscoredForBudget: 0,
  ...emptyBatchTotals(),
});

/** What the `status` query answers while a backfill runs. */
export interface BackfillStatus extends BackfillTotals {
  phase: string;
  /** The last interaction id taken. */
  after: string | null;
}

/** How much of the window the judge's scores cover once the backfill is done. */
export interface BackfillCoverage {
  /** Interactions stored in the window (each id once). */
  interactions: number;
  /** Of those, interactions with every check stored (scored or abstained, not failed) for this judge and these prompt versions. */
  scored: number;
}

export interface BackfillResult extends BackfillTotals {
  deployment: string;
  modelVersion?: string;
  from: string;
  to: string;
  judge: string;
  promptVersions: CycleSettings['promptVersions'];
  /** The window was read to its end (false: the limit stopped it first; `after` is where it stopped). */
  complete: boolean;
  after: string | null;
  coverage: BackfillCoverage;
  /** When the first run began (ISO). */
  startedAt: string;
  /** What is left to do, in words (empty when nothing). */
  note: string;
}

/** The seconds bounds of a window [from, to) over ClickHouse DateTime (whole seconds). */
export function windowSeconds(from: string, to: string): { fromSec: number; toSec: number } {
  // ts >= from ⇔ ts ≥ ceil(from); ts < to ⇔ ts < ceil(to) (ts is whole seconds).
  return { fromSec: Math.ceil(parseUtcDate(from) / 1000), toSec: Math.ceil(parseUtcDate(to) / 1000) };
}

const n = (x: number) => String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** "2,400 of 3,000 interactions (80 %)". */
export function coverageText(c: BackfillCoverage): string {
  const pct = c.interactions ? Math.round((c.scored / c.interactions) * 1000) / 10 : 0;
  return `${n(c.scored)} of ${n(c.interactions)} interactions (${pct} %)`;
}

/** One line of progress for the Web UI and the CLI. */
export function backfillProgressLine(t: BackfillTotals): string {
  return (
    `${n(t.seen)} interactions read in ${n(t.pages)} pages, ${n(t.alreadyScored)} already scored, ${n(t.selected)} sent to the judge; ` +
    `checks: ${n(t.scored)} scored, ${n(t.skipped)} already stored, ${n(t.abstained)} abstained, ${n(t.failed)} failed`
  );
}
