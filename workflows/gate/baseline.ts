/** computeBaseline: a version's scores aggregated into a baseline row (idempotent: same input, same row). */
import { proxyActivities, proxyLocalActivities, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { CollectorActivities } from '../../activities/collector/activities.js';
import type { GateActivities } from '../../activities/gate/activities.js';
import { raise } from '../../common/failures.js';
import { SA } from '../../common/search-attributes.js';
import { formatZodError } from '../../common/types.js';
import type { CycleSettings } from '../../domain/collector/collection.js';
import type { BaselineRecord } from '../../domain/gate/baseline.js';
import { baselineInputSchema, type BaselineInput } from '../../domain/gate/inputs.js';
import { gateOptions, localOptions } from '../options.js';

const acts = proxyActivities<GateActivities>(gateOptions);
const local = proxyLocalActivities<CollectorActivities>(localOptions);

/** The judge and prompt versions a baseline or a comparison is keyed by. */
export function judgeOf(settings: CycleSettings) {
  return { judge: settings.judge, promptVersions: settings.promptVersions };
}

/** Aggregate one version's scores into a baseline row (idempotent: same input, same row). */
export async function computeBaseline(raw: BaselineInput): Promise<BaselineRecord> {
  const parsed = baselineInputSchema.safeParse(raw);
  if (!parsed.success) raise('InvalidInput', formatZodError(parsed.error));
  const input = parsed.data;
  const settings = await local.cycleSettings();
  upsertSearchAttributes([
    { key: SA.deployment, value: input.deployment },
    { key: SA.kind, value: 'baseline' },
    { key: SA.modelVersion, value: [input.version] },
  ]);
  const rec = await acts.computeAndStoreBaseline({
    deployment: input.deployment,
    version: input.version,
    judge: input.judge ?? settings.judge,
    promptVersions: input.promptVersions ?? settings.promptVersions,
    window: { lastN: input.lastN, from: input.from, to: input.to },
    workflowId: workflowInfo().workflowId,
    minSamples: input.minSamples,
  });
  if (rec.samples > 0) upsertSearchAttributes([{ key: SA.quality, value: rec.stats.quality.mean }]);
  setCurrentDetails(
    rec.stored === false
      ? `Baseline ${rec.version}: only ${rec.samples} scored interactions (at least ${input.minSamples} are needed): not stored`
      : `Baseline ${rec.version}: ${rec.samples} samples, quality ${(rec.stats.quality.mean * 100).toFixed(1)} %`,
  );
  return rec;
}
