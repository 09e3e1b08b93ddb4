/**
 * deployGate (LLM integration point 4, with the application agent's explanation): baseline,
 * durable wait for candidate scores, an anytime-valid decision, the explanation, rollback on
 * REJECT and the record of it all. Deterministic: statistics are pure code
 * (domain/gate/stats.ts); all I/O is in activities.
 */
import { msToNumber } from '@temporalio/common';
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  log,
  ParentClosePolicy,
  patched,
  startChild,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CollectorActivities } from '../../activities/collector/activities.js';
import type { GateActivities } from '../../activities/gate/activities.js';
import type { NotifyActivities } from '../../activities/gate/notify.js';
import { raise, rootCause } from '../../common/failures.js';
import { SA } from '../../common/search-attributes.js';
import { formatZodError } from '../../common/types.js';
import type { CycleSettings } from '../../domain/collector/collection.js';
import type { BaselineRecord } from '../../domain/gate/baseline.js';
import { DECISION_RULE_TEST, decideLook, PER_METRIC_RULE } from '../../domain/gate/stats.js';
import {
  DEFAULT_RULE,
  gateInputSchema,
  overrideSchema,
  overrideSignalSchema,
  resolvedTolerances,
  unmeasuredAllowed,
  type Decision,
  type DecisionRuleOptions,
  type Evidence,
  type GateInput,
  type GateProgress,
  type GateResult,
  type LookPoint,
  type LookResult,
  type Override,
  type RollbackOutcome,
  type VersionStats,
} from '../../domain/gate/types.js';
import { appendLook, lookPoint } from '../../domain/gate/looks.js';
import { noticeOf } from '../../domain/gate/notify.js';
import { explainChild } from '../agents/application/explain-decision.js';
import { gateOptions, localOptions, rollbackOptions } from '../options.js';
import { computeBaseline, judgeOf } from './baseline.js';
import { gateNotifications } from './notify.js';

const acts = proxyActivities<GateActivities>(gateOptions);
const rollbackActs = proxyActivities<GateActivities>(rollbackOptions);
const local = proxyLocalActivities<CollectorActivities>(localOptions);
const notifyLookup = proxyActivities<NotifyActivities>(gateOptions);

/**
 * Patch id: from this change on, a stored baseline is used only when it has as many samples as
 * the gate's window asks for (else it is recomputed), and a gate without a usable baseline ends
 * INCONCLUSIVE without acting. Gates recorded before took any stored baseline and applied
 * onInconclusive, and replay so.
 */
export const USABLE_BASELINE = 'usable-baseline';

/** Patch id: from this change on, a REJECT, INCONCLUSIVE, failed rollback or override notifies the deployment's targets. */
export const GATE_NOTIFICATIONS = 'gate-notifications';
/**
 * Gates started before it continued as new only when the server suggested it; a server that
 * never does (older releases, or limits set off) let a gate checking every second run into the
 * 51,200-event history limit within hours. Now also after LOOKS_PER_RUN looks of one run.
 */
const LOOKS_PER_RUN_PATCH = 'gate-looks-per-run';
/** Looks one run of a gate makes at most before it continues as new (about 3,300 history events, below the 4,096 at which servers suggest it). */
export const LOOKS_PER_RUN = 300;

export const gateProgressQuery = defineQuery<GateProgress>('progress');
export const overrideUpdate = defineUpdate<GateProgress, [Override]>('override');
export const overrideSignal = defineSignal<[Override]>('override');

interface GateCarry {
  startedAt: number;
  deadline: number;
  looks: number;
  settings: CycleSettings;
  baseline: BaselineRecord;
  override?: Override & { at: string };
  /** The looks so far, for the evidence's charts. */
  history?: LookPoint[];
}

function overrideDecision(o: Override): GateResult['effectiveDecision'] {
  return o.action === 'approve' ? 'APPROVE' : o.action === 'reject' ? 'REJECT' : 'ABORTED';
}

/**
 * The deploy gate: baseline, durable wait for candidate scores, an anytime-valid decision,
 * an explanation by the application agent, rollback on REJECT, and the record of it all.
 */
export async function deployGate(raw: Omit<GateInput, 'carry'> & { carry?: GateCarry }): Promise<GateResult> {
  const parsed = gateInputSchema.safeParse(raw);
  if (!parsed.success) raise('InvalidInput', formatZodError(parsed.error));
  const input = parsed.data;
  const info = workflowInfo();
  const gateId = info.workflowId;
  // Checked by the schema; its records are the gate's own types.
  const carry = input.carry as GateCarry | undefined;
  const startedAt = carry?.startedAt ?? Date.now();
  const deadline = carry?.deadline ?? startedAt + msToNumber(input.maxWait);
  const rule: DecisionRuleOptions = {
    tolerances: resolvedTolerances(input),
    minSamples: input.minSamples,
    alpha: input.alpha,
    plannedSamples: DEFAULT_RULE.plannedSamples,
    allowUnmeasured: unmeasuredAllowed(input.allowUnmeasured),
    legacy: !patched(PER_METRIC_RULE),
  };

  let override = carry?.override;
  let looks = carry?.looks ?? 0;
  const firstLookOfRun = looks;
  let history: LookPoint[] = carry?.history ?? [];
  const progress: GateProgress = {
    phase: 'baseline',
    looks,
    samples: 0,
    minSamples: input.minSamples,
    deadline: new Date(deadline).toISOString(),
  };
  setHandler(gateProgressQuery, () => progress);
  /** Only the checked fields of an override are kept (whatever else a caller sent is never stored). */
  const accept = (o: Override) => {
    override ??= { action: o.action, reason: o.reason, by: o.by, at: new Date().toISOString() };
  };
  setHandler(
    overrideUpdate,
    (o) => {
      accept(overrideSchema.parse(o));
      return progress;
    },
    {
      validator: (o) => {
        const p = overrideSchema.safeParse(o);
        if (!p.success) throw new Error(`invalid override: ${formatZodError(p.error)}`);
        if (override) throw new Error(`the gate was already overridden by ${override.by}`);
        if (['explaining', 'rolling-back', 'done'].includes(progress.phase)) {
          throw new Error(`the gate has already decided ${progress.decision ?? ''}`.trim());
        }
      },
    },
  );
  setHandler(overrideSignal, (o) => {
    const p = overrideSignalSchema.safeParse(o);
    if (p.success && !['explaining', 'rolling-back', 'done'].includes(progress.phase)) accept(p.data);
  });

  upsertSearchAttributes([
    { key: SA.deployment, value: input.deployment },
    { key: SA.kind, value: 'gate' },
    { key: SA.modelVersion, value: [input.baselineVersion, input.candidateVersion] },
    { key: SA.decision, value: 'PENDING' },
  ]);
  await acts.requireDeployment(input.deployment);
  const settings = carry?.settings ?? (await local.cycleSettings());
  const usable = patched(USABLE_BASELINE);
  const baseline: BaselineRecord = carry?.baseline ?? (usable ? await usableBaseline() : await legacyBaseline());

  let decision: Decision | undefined;
  let reason = '';
  let look: LookResult | undefined;
  let candidate: VersionStats | undefined;
  /** No usable baseline: the gate ends INCONCLUSIVE and does nothing (it never rolls back on missing evidence). */
  let noBaseline = false;
  if (baseline.samples < input.minSamples) {
    decision = 'INCONCLUSIVE';
    noBaseline = usable;
    reason =
      `the baseline ${input.baselineVersion} has ${baseline.samples} interactions scored by ${settings.judge} (${settings.promptVersions.quality}); at least ${input.minSamples} are needed` +
      (usable
        ? `: no usable baseline, so nothing is decided and nothing is rolled back (collect and score more interactions of ${input.baselineVersion}, or lower --min-samples)`
        : '');
  }

  progress.phase = 'waiting';
  while (!decision && !override) {
    candidate = await acts.versionStats({ deployment: input.deployment, version: input.candidateVersion, ...judgeOf(settings) });
    look = decideLook(baseline.stats, candidate, rule);
    looks++;
    history = appendLook(history, lookPoint(look, looks, Date.now()));
    Object.assign(progress, { looks, samples: candidate.quality.n, lastLook: look });
    if (candidate.quality.n > 0) upsertSearchAttributes([{ key: SA.quality, value: candidate.quality.mean }]);
    setCurrentDetails(`Look ${looks}: ${candidate.quality.n} candidate samples. ${look.reason}`);
    if (look.outcome !== 'CONTINUE') {
      decision = look.outcome;
      reason = look.reason;
      break;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      decision = 'INCONCLUSIVE';
      reason = `deadline reached after ${looks} looks: ${look.reason}`;
      break;
    }
    if (workflowInfo().continueAsNewSuggested || (looks - firstLookOfRun >= LOOKS_PER_RUN && patched(LOOKS_PER_RUN_PATCH))) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof deployGate>({ ...raw, carry: { startedAt, deadline, looks, settings, baseline, override, history } });
    }
    await condition(() => override !== undefined, Math.min(msToNumber(input.checkEvery), remaining));
  }

  if (decision === 'INCONCLUSIVE' && input.onInconclusive === 'hold' && !override && !noBaseline) {
    progress.phase = 'holding';
    upsertSearchAttributes([{ key: SA.decision, value: 'HOLD' }]);
    setCurrentDetails(
      `INCONCLUSIVE, holding for a human override (approve / reject / abort) until ${input.holdFor} have passed: ${reason}`,
    );
    await condition(() => override !== undefined, msToNumber(input.holdFor));
  }

  let effective: GateResult['effectiveDecision'];
  if (override) {
    const statistical = decision ? ` (the gate's own verdict: ${decision})` : '';
    effective = overrideDecision(override);
    decision = effective;
    reason = `human override by ${override.by}: ${override.reason}${statistical}`;
  } else {
    decision ??= 'INCONCLUSIVE';
    effective =
      decision !== 'INCONCLUSIVE' ? decision : noBaseline ? 'INCONCLUSIVE' : input.onInconclusive === 'approve' ? 'APPROVE' : 'REJECT';
    if (decision === 'INCONCLUSIVE' && !noBaseline)
      reason += `; INCONCLUSIVE counts as ${effective} (onInconclusive=${input.onInconclusive})`;
  }
  progress.decision = decision;
  upsertSearchAttributes([{ key: SA.decision, value: decision }]);

  const evidence: Evidence | undefined =
    look && candidate
      ? {
          baseline: {
            ...baseline.stats,
            version: input.baselineVersion,
            judge: settings.judge,
            promptVersion: settings.promptVersions.quality,
            baselineId: baseline.id,
          },
          candidate: { ...candidate, version: input.candidateVersion },
          look,
          looks,
          rule: { test: DECISION_RULE_TEST, alpha: rule.alpha, minSamples: rule.minSamples, tolerances: rule.tolerances },
          history,
        }
      : undefined;

  progress.phase = 'explaining';
  const explanation = await explainChild(
    { decision, evidence, reason, settings },
    { workflowId: `${gateId}/explain`, staticSummary: `Explanation of the ${decision} for ${input.deployment} ${input.candidateVersion}` },
  );

  const idempotencyKey = `${gateId}/${info.firstExecutionRunId}`;
  let rollback: RollbackOutcome = { status: 'not-needed', deployer: input.deployer.type, detail: '', idempotencyKey };
  if (effective === 'REJECT') {
    progress.phase = 'rolling-back';
    setCurrentDetails(`${decision}: rolling ${input.deployment} back from ${input.candidateVersion} to ${input.baselineVersion}`);
    try {
      rollback = await rollbackActs.rollback({
        gateId,
        idempotencyKey,
        deployment: input.deployment,
        fromVersion: input.candidateVersion,
        toVersion: input.baselineVersion,
        reason,
        deployer: input.deployer,
        gateStartedAt: new Date(startedAt).toISOString(),
      });
    } catch (e) {
      const why = rootCause(e).message;
      rollback = { status: 'failed', deployer: input.deployer.type, detail: why, idempotencyKey };
    }
  }

  const result: GateResult = {
    gateId,
    deployment: input.deployment,
    baselineVersion: input.baselineVersion,
    candidateVersion: input.candidateVersion,
    decision,
    effectiveDecision: effective,
    reason,
    evidence,
    explanation,
    override,
    rollback,
  };
  const notice = noticeOf(result);
  if (notice.events.length && patched(GATE_NOTIFICATIONS) && (await notifyLookup.listNotifyTargets(input.deployment)).length) {
    // Abandoned: the gate neither waits for the receivers nor depends on them, nor fails when the
    // child cannot start (one of an earlier run of this gate id still retrying).
    try {
      await startChild(gateNotifications, { workflowId: `${gateId}/notify`, args: [notice], parentClosePolicy: ParentClosePolicy.ABANDON });
    } catch (e) {
      log.warn('gate notifications not started', { gateId, error: rootCause(e).message });
    }
  }
  await acts.recordDecision({
    result,
    runId: info.firstExecutionRunId,
    startedAt: new Date(startedAt).toISOString(),
    input: { ...input, carry: undefined },
  });
  progress.phase = 'done';
  setCurrentDetails(`${decision}: ${explanation.summary}${rollback.status !== 'not-needed' ? ` Rollback: ${rollback.status}.` : ''}`);
  await condition(allHandlersFinished);
  return result;

  function baselineChild(id: string) {
    return executeChild(computeBaseline, {
      workflowId: id,
      args: [
        {
          deployment: input.deployment,
          version: input.baselineVersion,
          lastN: input.baselineLastN,
          minSamples: input.minSamples,
          ...judgeOf(settings),
        },
      ],
      staticSummary: `Baseline of ${input.deployment} ${input.baselineVersion} for the gate`,
    });
  }

  /** The stored baseline when it is full (as many samples as the window asks for), else computed now. */
  async function usableBaseline(): Promise<BaselineRecord> {
    const stored = await acts.findBaseline({
      deployment: input.deployment,
      version: input.baselineVersion,
      minSamples: input.minSamples,
      ...judgeOf(settings),
    });
    return stored && stored.samples >= input.baselineLastN ? stored : baselineChild(`${gateId}/baseline`);
  }

  /** Gates recorded before USABLE_BASELINE: any stored baseline, else computed. */
  async function legacyBaseline(): Promise<BaselineRecord> {
    return (
      (await acts.findBaseline({ deployment: input.deployment, version: input.baselineVersion, ...judgeOf(settings) })) ??
      baselineChild(`${gateId}/baseline`)
    );
  }
}
