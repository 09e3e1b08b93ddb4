/**
 * Activities of the deploy gate: baselines, candidate statistics, the rollback (delivered with
 * one idempotency key) and the decision record. The explanation is the application agent's
 * (activities/agents/application).
 */
import { Context } from '@temporalio/activity';
import { redact, secretsOf, urlAddress } from '../../common/secrets.js';
import { raise } from '../../common/failures.js';
import type { Check } from '../../common/types.js';
import { baselineId, toVersionStats, type BaselineRecord, type BaselineWindow } from '../../domain/gate/baseline.js';
import type { DeployerConfig, GateResult, RollbackOutcome, VersionStats } from '../../domain/gate/types.js';
import type { ActivityDeps } from '../deps.js';
import { recordGateDecision } from '../metrics.js';
import { registeredDeployment } from '../storage/postgres/deployments.js';
import * as gates from '../storage/postgres/gates.js';
import { deliverRollback } from './rollback.js';

/** How often a rollback waiting for its deployment's turn asks again. */
const ROLLBACK_TURN_POLL_MS = 2000;

export function createGateActivities(deps: ActivityDeps) {
  const { config, ch, db } = deps;

  async function requireDeployment(deployment: string): Promise<void> {
    await registeredDeployment(db, deployment);
  }

  /** The stored baseline, unless it has fewer than `minSamples` scored interactions (rows stored before that rule). */
  async function findBaseline(q: {
    deployment: string;
    version: string;
    judge: string;
    promptVersions: Record<Check, string>;
    minSamples?: number;
  }): Promise<BaselineRecord | null> {
    const rec = await gates.findBaseline(db, baselineId(q.deployment, q.version, q.judge, q.promptVersions));
    return rec && rec.samples >= (q.minSamples ?? 1) ? rec : null;
  }

  /** Aggregate a version's scores in ClickHouse and upsert the baseline row (idempotent by its id). */
  async function computeAndStoreBaseline(q: {
    deployment: string;
    version: string;
    judge: string;
    promptVersions: Record<Check, string>;
    window: BaselineWindow;
    workflowId: string;
    /** Below this many samples the baseline is returned but not stored. */
    minSamples?: number;
  }): Promise<BaselineRecord> {
    await requireDeployment(q.deployment);
    const agg = await ch.versionAggregates({ ...q, ...q.window });
    const stats = toVersionStats(agg);
    const rec: BaselineRecord = {
      id: baselineId(q.deployment, q.version, q.judge, q.promptVersions),
      deployment: q.deployment,
      version: q.version,
      judge: q.judge,
      promptVersions: q.promptVersions,
      window: q.window,
      windowFrom: agg.firstTs,
      windowTo: agg.lastTs,
      samples: stats.quality.n,
      stats,
      dimensions: agg.qualityDimensions,
      workflowId: q.workflowId,
    };
    const keep = rec.samples >= (q.minSamples ?? 1);
    if (keep) await gates.upsertBaseline(db, rec);
    return { ...rec, stored: keep };
  }

  async function versionStats(q: {
    deployment: string;
    version: string;
    judge: string;
    promptVersions: Record<Check, string>;
    window?: BaselineWindow;
  }): Promise<VersionStats> {
    const stats = toVersionStats(await ch.versionAggregates({ ...q, ...(q.window ?? {}) }));
    if (q.window) return stats;
    // How much of the version was scored (sampling, the LLM's budget): said in the evidence.
    return { ...stats, interactions: (await ch.interactionsPerVersion(q.deployment, q.version))[q.version] ?? 0 };
  }

  /**
   * Roll back once per gate run: the idempotency key is claimed in PostgreSQL, a delivered
   * rollback is never delivered again, and the deployer receives the same key on every attempt
   * (so a crash between delivery and bookkeeping is de-duplicated by the receiver). One delivery
   * per deployment at a time, and the same rollback delivered by another gate after this one
   * began (two pipelines gating one candidate) is not sent again (see `takeRollbackTurn`).
   */
  async function rollback(input: {
    gateId: string;
    idempotencyKey: string;
    deployment: string;
    fromVersion: string;
    toVersion: string;
    reason: string;
    deployer: DeployerConfig;
    gateStartedAt?: string;
  }): Promise<RollbackOutcome> {
    const key = input.idempotencyKey;
    const outcome = (status: RollbackOutcome['status'], detail: string): RollbackOutcome => ({
      status,
      deployer: input.deployer.type,
      detail,
      idempotencyKey: key,
    });
    const prior = await gates.claimRollback(db, { ...input, deployer: input.deployer.type });
    if (prior.status === 'delivered' || prior.status === 'dry-run') return outcome(prior.status, prior.detail);
    const ctx = Context.current();
    let attempt = 1;
    if (input.deployer.type !== 'dry-run') {
      for (;;) {
        const turn = await gates.takeRollbackTurn(db, key);
        if (turn.kind === 'go') {
          attempt = turn.attempt;
          break;
        }
        if (turn.kind === 'done') {
          const detail = `not sent again: gate ${turn.gateId} rolled ${input.deployment} back from ${input.fromVersion} to ${input.toVersion} at ${turn.deliveredAt}, after this gate began (${turn.detail})`;
          await gates.finishRollback(db, key, 'delivered', detail);
          return outcome('delivered', detail);
        }
        ctx.heartbeat(`waiting for gate ${turn.gateId}'s rollback of ${input.deployment} to finish`);
        await ctx.sleep(ROLLBACK_TURN_POLL_MS);
      }
    }
    const deployer = await withStoredUrl(input.deployer, input.gateId);
    let beats = 0;
    const beat = setInterval(() => {
      ctx.heartbeat();
      // Keep the deployment's turn (a dead worker's turn lapses after gates.ROLLBACK_TURN_MS).
      if (++beats % 5 === 0) gates.renewRollbackTurn(db, key).catch(() => undefined);
    }, 3000);
    let r: Awaited<ReturnType<typeof deliverRollback>>;
    try {
      r = await deliverRollback(
        deployer,
        {
          gateId: input.gateId,
          deployment: input.deployment,
          fromVersion: input.fromVersion,
          toVersion: input.toVersion,
          reason: input.reason,
          idempotencyKey: key,
          attempt,
        },
        { webhookSecret: config.webhookSecret, secrets: secretsOf(config), signal: ctx.cancellationSignal },
      );
    } catch (e) {
      // The deployment's other rollbacks need not wait out this attempt's turn.
      await gates.renewRollbackTurn(db, key, true).catch(() => undefined);
      throw e;
    } finally {
      clearInterval(beat);
    }
    await gates.finishRollback(db, key, r.status, r.detail);
    deps.faults?.afterRollbackDelivered?.(key);
    return outcome(r.status, r.detail);
  }

  /** A webhook whose URL was kept out of history: its full URL from PostgreSQL. */
  async function withStoredUrl(d: DeployerConfig, gateId: string): Promise<DeployerConfig> {
    if (d.type !== 'webhook' || !d.storedUrl) return d;
    const url = await gates.deployerUrl(db, gateId);
    if (!url) raise('DeployerRejected', `the rollback webhook URL of gate '${gateId}' is not stored any more: roll back by hand`);
    // The stored URL must be the address this gate was started with (a later start of the same
    // gate id with another address never redirects this gate's rollback).
    const stored = urlAddress(url);
    if (stored !== d.url) {
      raise(
        'DeployerRejected',
        `the stored rollback webhook URL of gate '${gateId}' is for ${stored ?? 'no valid address'}, not ${d.url}: roll back by hand`,
      );
    }
    return { ...d, url };
  }

  async function recordDecision(input: { result: GateResult; runId: string; startedAt: string; input: unknown }): Promise<void> {
    // The gate's input may hold a webhook URL with credentials: stored without them.
    const stored = JSON.parse(redact(JSON.stringify(input.input), secretsOf(config))) as unknown;
    await gates.recordDecision(db, input.result, input.runId, input.startedAt, stored);
    recordGateDecision(input.result);
  }

  async function recordComparison(c: gates.ComparisonRecord): Promise<void> {
    await gates.recordComparison(db, c);
  }

  return { requireDeployment, findBaseline, computeAndStoreBaseline, versionStats, rollback, recordDecision, recordComparison };
}

export type GateActivities = ReturnType<typeof createGateActivities>;
