/**
 * Activities of the application agent and the deploy gate (LLM integration point 4):
 * baselines, candidate statistics, explanations, rollbacks and the decision record.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { secretsOf, type Config } from '../../common/config.js';
import { explanationFromReply, explanationSchema, renderExplanationPrompt, unsupportedNumbers } from '../../domain/agents/application/explain.js';
import type {
  Decision,
  DeployerConfig,
  Evidence,
  Explanation,
  GateResult,
  LookResult,
  RollbackOutcome,
  SampleStats,
  VersionStats,
} from '../../domain/gate/types.js';
import type { Check } from '../../common/types.js';
import type { ClickHouseStore, VersionAggregates } from '../storage/clickhouse/store.js';
import { deliverRollback } from './rollback.js';
import type { LlmClient } from '../llm/client.js';
import * as pgdb from '../storage/postgres/db.js';

export interface GateDeps {
  config: Config;
  ch: ClickHouseStore;
  db: pgdb.Db;
  llm?: LlmClient;
  /** Fault injection for tests: runs right after a rollback is delivered and recorded. */
  faults?: { afterRollbackDelivered?: (key: string) => void };
}

export interface BaselineWindow {
  lastN?: number;
  from?: string;
  to?: string;
}

export interface BaselineRecord {
  id: string;
  deployment: string;
  version: string;
  judge: string;
  promptVersions: Record<Check, string>;
  window: BaselineWindow;
  windowFrom?: string;
  windowTo?: string;
  samples: number;
  stats: VersionStats;
  dimensions: VersionAggregates['qualityDimensions'];
  workflowId: string;
  computedAt?: string;
}

export const baselineId = (deployment: string, version: string, judge: string, promptVersions: Record<Check, string>) =>
  `${deployment}/${version}/${judge}/${promptVersions.quality}+${promptVersions.hallucination}+${promptVersions.toxicity}`;

function rateStats(n: number, flagged: number): SampleStats {
  if (!n) return { n: 0, mean: 0, sd: 0 };
  const p = flagged / n;
  return { n, mean: p, sd: n > 1 ? Math.sqrt((p * (1 - p) * n) / (n - 1)) : 0 };
}

export function toVersionStats(a: VersionAggregates): VersionStats {
  const q = a.checks.quality;
  return {
    quality: q ? { n: q.n, mean: q.mean, sd: q.sd } : { n: 0, mean: 0, sd: 0 },
    hallucination_rate: rateStats(a.checks.hallucination?.n ?? 0, a.checks.hallucination?.flagged ?? 0),
    toxicity_rate: rateStats(a.checks.toxicity?.n ?? 0, a.checks.toxicity?.flagged ?? 0),
  };
}

export function createGateActivities(deps: GateDeps) {
  const { config, ch, db } = deps;

  async function requireDeployment(deployment: string): Promise<void> {
    if (!(await pgdb.getDeployment(db, deployment))) {
      throw ApplicationFailure.create({
        type: 'UnknownDeployment',
        nonRetryable: true,
        message: `deployment '${deployment}' is not registered: add it with 'optiinfra deployment add ${deployment} --source-url URL'`,
      });
    }
  }

  async function findBaseline(q: {
    deployment: string;
    version: string;
    judge: string;
    promptVersions: Record<Check, string>;
  }): Promise<BaselineRecord | null> {
    const r = await db.query('SELECT * FROM baselines WHERE id = $1', [baselineId(q.deployment, q.version, q.judge, q.promptVersions)]);
    const row = r.rows[0];
    if (!row) return null;
    return {
      id: row.id,
      deployment: row.deployment,
      version: row.model_version,
      judge: row.judge,
      promptVersions: row.prompt_versions,
      window: row.window_spec,
      windowFrom: row.window_from?.toISOString(),
      windowTo: row.window_to?.toISOString(),
      samples: row.samples,
      stats: row.stats,
      dimensions: row.dimensions,
      workflowId: row.workflow_id,
      computedAt: row.computed_at?.toISOString(),
    };
  }

  /** Aggregate a version's scores in ClickHouse and upsert the baseline row (idempotent by its id). */
  async function computeAndStoreBaseline(q: {
    deployment: string;
    version: string;
    judge: string;
    promptVersions: Record<Check, string>;
    window: BaselineWindow;
    workflowId: string;
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
    await db.query(
      `INSERT INTO baselines (id, deployment, model_version, judge, prompt_versions, window_spec, window_from, window_to,
         samples, stats, dimensions, workflow_id)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
       ON CONFLICT (id) DO UPDATE SET window_spec = EXCLUDED.window_spec, window_from = EXCLUDED.window_from,
         window_to = EXCLUDED.window_to, samples = EXCLUDED.samples, stats = EXCLUDED.stats,
         dimensions = EXCLUDED.dimensions, workflow_id = EXCLUDED.workflow_id, computed_at = now()`,
      [
        rec.id,
        rec.deployment,
        rec.version,
        rec.judge,
        JSON.stringify(rec.promptVersions),
        JSON.stringify(rec.window),
        rec.windowFrom ?? null,
        rec.windowTo ?? null,
        rec.samples,
        JSON.stringify(rec.stats),
        JSON.stringify(rec.dimensions),
        rec.workflowId,
      ],
    );
    return rec;
  }

  async function versionStats(q: {
    deployment: string;
    version: string;
    judge: string;
    promptVersions: Record<Check, string>;
    window?: BaselineWindow;
  }): Promise<VersionStats> {
    return toVersionStats(await ch.versionAggregates({ ...q, ...(q.window ?? {}) }));
  }

  /** The application agent's narrative, written by the LLM from the numbers only. */
  async function explainWithLlm(input: { decision: Decision; evidence?: Evidence; reason: string }): Promise<Explanation> {
    if (!deps.llm) {
      throw ApplicationFailure.create({ type: 'LlmDisabled', nonRetryable: true, message: 'no LLM is configured on this worker' });
    }
    const prompt = renderExplanationPrompt(input.decision, input.evidence, input.reason);
    const r = await deps.llm.json({ ...prompt, schema: explanationSchema, maxTokens: 800 });
    const invented = unsupportedNumbers(r.value, prompt);
    if (invented.length) {
      // A narrative must cite only the numbers it was given; retried, then the template is used.
      throw ApplicationFailure.create({
        type: 'LlmInvalidReply',
        message: `the explanation cites numbers that are not in the evidence: ${invented.slice(0, 5).join(', ')}`,
      });
    }
    return explanationFromReply(r.value, r.model);
  }

  /**
   * Roll back exactly once per gate run: the idempotency key is claimed in PostgreSQL, a
   * delivered rollback is never delivered again, and the deployer receives the same key on every
   * attempt (so a crash between delivery and bookkeeping is de-duplicated by the receiver).
   */
  async function rollback(input: {
    gateId: string;
    idempotencyKey: string;
    deployment: string;
    fromVersion: string;
    toVersion: string;
    reason: string;
    deployer: DeployerConfig;
  }): Promise<RollbackOutcome> {
    const key = input.idempotencyKey;
    await db.query(
      `INSERT INTO rollbacks (idempotency_key, gate_id, deployment, from_version, to_version, deployer, status)
       VALUES ($1,$2,$3,$4,$5,$6,'pending') ON CONFLICT (idempotency_key) DO NOTHING`,
      [key, input.gateId, input.deployment, input.fromVersion, input.toVersion, input.deployer.type],
    );
    const prior = await db.query<{ status: string; detail: string }>('SELECT status, detail FROM rollbacks WHERE idempotency_key = $1', [key]);
    const done = prior.rows[0];
    if (done && (done.status === 'delivered' || done.status === 'dry-run')) {
      return { status: done.status, deployer: input.deployer.type, detail: done.detail, idempotencyKey: key };
    }
    await db.query('UPDATE rollbacks SET attempts = attempts + 1 WHERE idempotency_key = $1', [key]);
    const beat = setInterval(() => Context.current().heartbeat(), 3000);
    const r = await deliverRollback(
      input.deployer,
      {
        gateId: input.gateId,
        deployment: input.deployment,
        fromVersion: input.fromVersion,
        toVersion: input.toVersion,
        reason: input.reason,
        idempotencyKey: key,
      },
      { webhookSecret: config.webhookSecret, secrets: secretsOf(config) },
    ).finally(() => clearInterval(beat));
    await db.query('UPDATE rollbacks SET status = $2, detail = $3, delivered_at = now() WHERE idempotency_key = $1', [
      key,
      r.status,
      r.detail,
    ]);
    deps.faults?.afterRollbackDelivered?.(key);
    return { status: r.status, deployer: input.deployer.type, detail: r.detail, idempotencyKey: key };
  }

  async function recordDecision(input: { result: GateResult; runId: string; startedAt: string; input: unknown }): Promise<void> {
    const r = input.result;
    await db.query(
      `INSERT INTO gate_decisions (gate_id, run_id, deployment, baseline_version, candidate_version, decision,
         effective_decision, reason, evidence, explanation, override, rollback, input, started_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
       ON CONFLICT (gate_id) DO UPDATE SET run_id = EXCLUDED.run_id, decision = EXCLUDED.decision,
         effective_decision = EXCLUDED.effective_decision, reason = EXCLUDED.reason, evidence = EXCLUDED.evidence,
         explanation = EXCLUDED.explanation, override = EXCLUDED.override, rollback = EXCLUDED.rollback,
         input = EXCLUDED.input, started_at = EXCLUDED.started_at, decided_at = now()`,
      [
        r.gateId,
        input.runId,
        r.deployment,
        r.baselineVersion,
        r.candidateVersion,
        r.decision,
        r.effectiveDecision,
        r.reason,
        r.evidence ? JSON.stringify(r.evidence) : null,
        r.explanation ? JSON.stringify(r.explanation) : null,
        r.override ? JSON.stringify(r.override) : null,
        JSON.stringify(r.rollback),
        JSON.stringify(input.input),
        input.startedAt,
      ],
    );
  }

  async function recordComparison(c: {
    id: string;
    deployment: string;
    versionA: string;
    versionB: string;
    look: LookResult;
    a: VersionStats;
    b: VersionStats;
    explanation: Explanation;
  }): Promise<void> {
    await db.query(
      `INSERT INTO comparisons (id, deployment, version_a, version_b, outcome, reason, look, stats_a, stats_b, explanation)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
       ON CONFLICT (id) DO UPDATE SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason, look = EXCLUDED.look,
         stats_a = EXCLUDED.stats_a, stats_b = EXCLUDED.stats_b, explanation = EXCLUDED.explanation, created_at = now()`,
      [
        c.id,
        c.deployment,
        c.versionA,
        c.versionB,
        c.look.outcome,
        c.look.reason,
        JSON.stringify(c.look),
        JSON.stringify(c.a),
        JSON.stringify(c.b),
        JSON.stringify(c.explanation),
      ],
    );
  }

  return {
    requireDeployment,
    findBaseline,
    computeAndStoreBaseline,
    versionStats,
    explainWithLlm,
    rollback,
    recordDecision,
    recordComparison,
  };
}

export type GateActivities = ReturnType<typeof createGateActivities>;
