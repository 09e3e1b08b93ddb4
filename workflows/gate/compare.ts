/** abCompare: two versions serving side by side, compared with the gate's statistics and explained. */
import { patched, proxyActivities, proxyLocalActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { CollectorActivities } from '../../activities/collector/activities.js';
import type { GateActivities } from '../../activities/gate/activities.js';
import { raise } from '../../common/failures.js';
import { SA } from '../../common/search-attributes.js';
import { formatZodError } from '../../common/types.js';
import { compareInputSchema, type CompareInput, type ComparisonResult } from '../../domain/gate/inputs.js';
import { DECISION_RULE_TEST, decideLook, PER_METRIC_RULE } from '../../domain/gate/stats.js';
import { DEFAULT_RULE, type Decision, type Evidence } from '../../domain/gate/types.js';
import { explainChild } from '../agents/application/explain-decision.js';
import { gateOptions, localOptions } from '../options.js';
import { judgeOf } from './baseline.js';

const acts = proxyActivities<GateActivities>(gateOptions);
const local = proxyLocalActivities<CollectorActivities>(localOptions);

/** A/B comparison of two versions serving side by side, with the gate's statistics. */
export async function abCompare(raw: CompareInput): Promise<ComparisonResult> {
  const parsed = compareInputSchema.safeParse(raw);
  if (!parsed.success) raise('InvalidInput', formatZodError(parsed.error));
  const input = parsed.data;
  upsertSearchAttributes([
    { key: SA.deployment, value: input.deployment },
    { key: SA.kind, value: 'compare' },
    { key: SA.modelVersion, value: [input.versionA, input.versionB] },
  ]);
  await acts.requireDeployment(input.deployment);
  const settings = await local.cycleSettings();
  const window = { lastN: input.lastN, from: input.from, to: input.to };
  const [a, b] = await Promise.all(
    [input.versionA, input.versionB].map((version) =>
      acts.versionStats({ deployment: input.deployment, version, ...judgeOf(settings), window }),
    ),
  );
  const tolerances = { ...DEFAULT_RULE.tolerances, ...input.tolerances };
  const look = decideLook(a!, b!, {
    tolerances,
    minSamples: input.minSamples,
    alpha: input.alpha,
    plannedSamples: DEFAULT_RULE.plannedSamples,
    legacy: !patched(PER_METRIC_RULE),
  });
  const outcome: Decision = look.outcome === 'CONTINUE' ? 'INCONCLUSIVE' : look.outcome;
  upsertSearchAttributes([{ key: SA.decision, value: outcome }]);
  const evidence: Evidence = {
    baseline: { ...a!, version: input.versionA, judge: settings.judge, promptVersion: settings.promptVersions.quality, baselineId: '' },
    candidate: { ...b!, version: input.versionB },
    look,
    looks: 1,
    rule: { test: DECISION_RULE_TEST, alpha: input.alpha, minSamples: input.minSamples, tolerances },
  };
  const id = workflowInfo().workflowId;
  const explanation = await explainChild({ decision: outcome, evidence, reason: look.reason, settings }, { workflowId: `${id}/explain` });
  await acts.recordComparison({
    id,
    deployment: input.deployment,
    versionA: input.versionA,
    versionB: input.versionB,
    look,
    a: a!,
    b: b!,
    explanation,
  });
  return {
    id,
    deployment: input.deployment,
    versionA: input.versionA,
    versionB: input.versionB,
    outcome,
    reason: look.reason,
    look,
    a: a!,
    b: b!,
    explanation,
  };
}
