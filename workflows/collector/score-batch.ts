/**
 * scoreBatch: scores a bounded batch of one cycle's interactions as its own child workflow, one
 * judge activity per interaction and check. Failures are recorded, not thrown, except a
 * configuration problem of the LLM (bad key, unknown model), which stops the cycle.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { CollectorActivities } from '../../activities/collector/activities.js';
import { isFailureType, LLM_FATAL_TYPES, raise, rootCause, type FailureType } from '../../common/failures.js';
import { formatZodError, type Check } from '../../common/types.js';
import { SAMPLE_LIMIT, scoreBatchInputSchema, type BatchTotals, type CycleSettings } from '../../domain/collector/collection.js';
import { judgeOptions, storeOptions } from '../options.js';

const store = proxyActivities<CollectorActivities>(storeOptions);

export interface ScoreBatchInput {
  deployment: string;
  ids: string[];
  checks: Check[];
  settings: CycleSettings;
}

/** Score a bounded batch: one activity per interaction and check; failures are recorded, not thrown. */
export async function scoreBatch(raw: ScoreBatchInput): Promise<BatchTotals> {
  const parsed = scoreBatchInputSchema.safeParse(raw);
  if (!parsed.success) raise('InvalidInput', formatZodError(parsed.error));
  const input = parsed.data;
  const { settings } = input;
  const judge = proxyActivities<CollectorActivities>(judgeOptions(settings));
  const totals: BatchTotals = { scored: 0, failed: 0, skipped: 0, promptTokens: 0, completionTokens: 0, failureSamples: [] };
  let fatal: { type: FailureType; message: string } | undefined;
  await Promise.all(
    input.ids.flatMap((interactionId) =>
      input.checks.map(async (check) => {
        const key = {
          deployment: input.deployment,
          interactionId,
          check,
          judge: settings.judge,
          promptVersion: settings.promptVersions[check],
        };
        try {
          const r = await judge.judgeCheck(key);
          if (r.status === 'ok') totals.scored++;
          else totals.skipped++;
          totals.promptTokens += r.promptTokens;
          totals.completionTokens += r.completionTokens;
        } catch (e) {
          const f = rootCause(e);
          if (isFailureType(f.type, LLM_FATAL_TYPES)) {
            fatal ??= { type: f.type, message: f.message };
            return;
          }
          await store.recordCheckFailure({ ...key, reason: `${f.type ?? 'Error'}: ${f.message}` });
          totals.failed++;
          if (totals.failureSamples.length < SAMPLE_LIMIT) totals.failureSamples.push({ id: interactionId, check, reason: f.message });
        }
      }),
    ),
  );
  if (fatal) {
    // A configuration problem (bad key, unknown model): stop the cycle; the cursor stays put.
    raise(fatal.type, fatal.message);
  }
  return totals;
}
