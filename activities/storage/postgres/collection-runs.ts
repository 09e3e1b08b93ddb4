/** Collection cycles and what each one did. */
import type { CycleResult } from '../../../domain/collector/collection.js';
import type { Db } from './db.js';

/** Upsert a cycle's record (a retried record replaces the row: same cycle id). */
export async function recordCollectionRun(db: Db, r: CycleResult & { scheduledAt?: string }): Promise<void> {
  await db.query(
      `INSERT INTO collection_runs (cycle_id, deployment, scheduled_at, pages, fetched, stored, bad, sampled, scored,
         failed, skipped, judge, model_versions, bad_samples, failure_samples, llm_prompt_tokens, llm_completion_tokens)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)
       ON CONFLICT (cycle_id) DO UPDATE SET finished_at = now(), pages = EXCLUDED.pages, fetched = EXCLUDED.fetched,
         stored = EXCLUDED.stored, bad = EXCLUDED.bad, sampled = EXCLUDED.sampled, scored = EXCLUDED.scored,
         failed = EXCLUDED.failed, skipped = EXCLUDED.skipped, judge = EXCLUDED.judge,
         model_versions = EXCLUDED.model_versions, bad_samples = EXCLUDED.bad_samples,
         failure_samples = EXCLUDED.failure_samples, llm_prompt_tokens = EXCLUDED.llm_prompt_tokens,
         llm_completion_tokens = EXCLUDED.llm_completion_tokens`,
      [
        r.cycleId,
        r.deployment,
        r.scheduledAt ?? null,
        r.pages,
        r.fetched,
        r.stored,
        r.bad,
        r.sampled,
        r.scored,
        r.failed,
        r.skipped,
        r.judge,
        r.versions,
        JSON.stringify(r.badSamples),
        JSON.stringify(r.failureSamples),
        r.promptTokens,
        r.completionTokens,
      ],
    );
}
