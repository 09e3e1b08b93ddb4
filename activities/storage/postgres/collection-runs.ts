/** Collection cycles and what each one did. */
import type { CycleResult } from '../../../domain/collector/collection.js';
import type { Db } from './db.js';

export interface CollectionRunRecord extends Omit<CycleResult, 'status'> {
  scheduledAt?: string;
  /** When the cycle began its work (its first workflow task; the first run's, across continue-as-new). */
  startedAt?: string;
  /**
   * 'skipped': refused by the deployment's lease (another cycle of it ran; `error` names it); not
   * a failure: nothing went wrong and nothing was collected.
   */
  status: 'ok' | 'failed' | 'skipped';
  error?: string;
}

/** Upsert a cycle's record (a retried record replaces the row: same cycle id). */
export async function recordCollectionRun(db: Db, r: CollectionRunRecord): Promise<void> {
  const cols: Array<[string, unknown]> = [
    ['cycle_id', r.cycleId],
    ['deployment', r.deployment],
    ['scheduled_at', r.scheduledAt ?? null],
    ['started_at', r.startedAt ?? null],
    ['status', r.status],
    ['error', r.error ?? null],
    ['pages', r.pages],
    ['fetched', r.fetched],
    ['stored', r.stored],
    ['bad', r.bad],
    ['conflicts', r.conflicts ?? 0],
    ['sampled', r.sampled],
    ['scored', r.scored],
    ['failed', r.failed],
    ['skipped', r.skipped],
    ['abstained', r.abstained ?? 0],
    ['unscored_for_budget', r.unscoredForBudget ?? 0],
    ['coverage_note', r.coverageNote ?? ''],
    ['judge', r.judge],
    ['model_versions', r.versions],
    ['bad_samples', JSON.stringify(r.badSamples)],
    ['failure_samples', JSON.stringify(r.failureSamples)],
    ['llm_prompt_tokens', r.promptTokens],
    ['llm_completion_tokens', r.completionTokens],
    ['llm_cached_tokens', r.cachedTokens ?? 0],
    ['llm_reasoning_tokens', r.reasoningTokens ?? 0],
    ['llm_calls', r.llmCalls ?? 0],
  ];
  const names = cols.map(([c]) => c);
  await db.query(
    `INSERT INTO collection_runs (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})
     ON CONFLICT (cycle_id) DO UPDATE SET finished_at = now(), ${names
       .filter((c) => c !== 'cycle_id')
       .map((c) => `${c} = EXCLUDED.${c}`)
       .join(', ')}`,
    cols.map(([, v]) => v),
  );
}

/** LLM tokens spent per scored check in a deployment's recent cycles of this judge (counted as the limits count them: cached prompt tokens excluded). */
export async function recentTokensPerCheck(db: Db, deployment: string, judge: string): Promise<number | undefined> {
  const r = await db.query<{ tokens: string | null; checks: string | null }>(
    `SELECT sum(llm_prompt_tokens - llm_cached_tokens + llm_completion_tokens) AS tokens, sum(scored + failed) AS checks
     FROM (SELECT * FROM collection_runs WHERE deployment = $1 AND judge = $2 AND llm_calls > 0 ORDER BY finished_at DESC LIMIT 5) recent`,
    [deployment, judge],
  );
  const tokens = Number(r.rows[0]?.tokens ?? 0);
  const checks = Number(r.rows[0]?.checks ?? 0);
  return checks > 0 && tokens > 0 ? tokens / checks : undefined;
}

/**
 * The latest cycle of a deployment that ran: when it finished, how it ended and its coverage
 * (a skipped cycle collected nothing and says nothing of coverage).
 */
export async function lastCycle(db: Db, deployment: string): Promise<CycleRow | undefined> {
  const r = await db.query<CycleRow>(
    `SELECT ${CYCLE_COLUMNS} FROM collection_runs WHERE deployment = $1 AND status <> 'skipped' ORDER BY finished_at DESC LIMIT 1`,
    [deployment],
  );
  return r.rows[0];
}

export type CollectionRunRow = CycleRow;

export interface CycleRow {
  cycle_id: string;
  status: 'ok' | 'failed' | 'skipped';
  error: string | null;
  scheduled_at: Date | null;
  started_at: Date | null;
  finished_at: Date;
  pages: number;
  fetched: number;
  stored: number;
  bad: number;
  scored: number;
  failed: number;
  skipped: number;
  coverage_note: string;
}

const CYCLE_COLUMNS =
  'cycle_id, status, error, scheduled_at, started_at, finished_at, pages, fetched, stored, bad, scored, failed, skipped, coverage_note';

/** A deployment's latest cycles, newest first (skipped ones included). */
export async function listCycles(db: Db, deployment: string, limit = 20): Promise<CycleRow[]> {
  const r = await db.query<CycleRow>(
    `SELECT ${CYCLE_COLUMNS} FROM collection_runs WHERE deployment = $1 ORDER BY finished_at DESC LIMIT $2`,
    [deployment, limit],
  );
  return r.rows;
}
