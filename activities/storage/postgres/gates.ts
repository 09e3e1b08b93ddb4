/** Baselines, gate decisions, rollbacks and A/B comparisons. */
import type { BaselineRecord } from '../../../domain/gate/baseline.js';
import type { Comparison, Explanation, GateResult } from '../../../domain/gate/types.js';
import { type Db, inTransaction } from './db.js';

export async function findBaseline(db: Db, id: string): Promise<BaselineRecord | null> {
  const r = await db.query('SELECT * FROM baselines WHERE id = $1', [id]);
  const row = r.rows[0];
  return row ? baselineOfRow(row) : null;
}

/**
 * The most recently computed baselines of a deployment (any version, judge and prompt versions),
 * newest first, at most `limit` (a deployment gathers one per version it ever had).
 */
export async function baselinesOf(db: Db, deployment: string, limit = 20): Promise<BaselineRecord[]> {
  const r = await db.query('SELECT * FROM baselines WHERE deployment = $1 ORDER BY computed_at DESC, id LIMIT $2', [
    deployment,
    Math.max(1, Math.floor(limit)),
  ]);
  return r.rows.map(baselineOfRow);
}

function baselineOfRow(row: Record<string, any>): BaselineRecord {
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

export async function upsertBaseline(db: Db, rec: BaselineRecord): Promise<void> {
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
}

export interface RollbackClaim {
  idempotencyKey: string;
  gateId: string;
  deployment: string;
  fromVersion: string;
  toVersion: string;
  deployer: string;
  /** When the gate began to watch the candidate (ISO 8601); without it, when the rollback was claimed. */
  gateStartedAt?: string;
}

/**
 * Claim a rollback by its idempotency key (a no-op when claimed before) and return its row:
 * a delivered or dry-run rollback is never delivered again.
 */
export async function claimRollback(db: Db, c: RollbackClaim): Promise<{ status: string; detail: string }> {
  await db.query(
    `INSERT INTO rollbacks (idempotency_key, gate_id, deployment, from_version, to_version, deployer, status, gate_started_at)
     VALUES ($1,$2,$3,$4,$5,$6,'pending',$7) ON CONFLICT (idempotency_key) DO NOTHING`,
    [c.idempotencyKey, c.gateId, c.deployment, c.fromVersion, c.toVersion, c.deployer, c.gateStartedAt ?? null],
  );
  const r = await db.query<{ status: string; detail: string }>('SELECT status, detail FROM rollbacks WHERE idempotency_key = $1', [
    c.idempotencyKey,
  ]);
  return r.rows[0] ?? { status: 'pending', detail: '' };
}

/**
 * How long a delivery holds its deployment's turn without renewing it: a worker that died while
 * delivering stops blocking the deployment's other rollbacks after this.
 */
export const ROLLBACK_TURN_MS = 60_000;

export type RollbackTurn =
  /** Deliver now: this is delivery `attempt` of the key (1 the first). */
  | { kind: 'go'; attempt: number }
  /** Another gate's rollback of the deployment is being delivered: ask again later. */
  | { kind: 'wait'; gateId: string }
  /** Another gate delivered the same rollback (same versions) after this gate began: not needed again. */
  | { kind: 'done'; gateId: string; deliveredAt: string; detail: string };

/**
 * Take the deployment's rollback turn for a claimed key. One delivery per deployment at a time
 * (two deployers acting on one deployment at once can undo each other, e.g. `kubectl rollout
 * undo` twice), and a rollback that another gate delivered after this gate began is not sent
 * again: both gates watched the same deployment of the candidate. A rollback delivered before
 * this gate began (the candidate was deployed again since) does not count.
 */
export async function takeRollbackTurn(db: Db, key: string, turnMs = ROLLBACK_TURN_MS): Promise<RollbackTurn> {
  return inTransaction(db, async (client) => {
    const mine = (
      await client.query<{ deployment: string; from_version: string; to_version: string }>(
        'SELECT deployment, from_version, to_version FROM rollbacks WHERE idempotency_key = $1',
        [key],
      )
    ).rows[0];
    if (!mine) throw new Error(`rollback '${key}' was never claimed`);
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`optiinfra rollback ${mine.deployment}`]);
    // One statement, so one snapshot: a delivery finishing meanwhile is seen either as busy or as done.
    const other = await client.query<{ kind: 'done' | 'wait'; gate_id: string; delivered_at: Date | null; detail: string }>(
      `SELECT CASE WHEN o.status = 'delivered' THEN 'done' ELSE 'wait' END AS kind, o.gate_id, o.delivered_at, o.detail
         FROM rollbacks o, rollbacks m
        WHERE m.idempotency_key = $1 AND o.idempotency_key <> m.idempotency_key AND o.deployment = m.deployment
          AND ((o.status = 'delivered' AND o.from_version = m.from_version AND o.to_version = m.to_version
                AND o.delivered_at >= coalesce(m.gate_started_at, m.created_at))
            OR (o.status = 'pending' AND o.attempt_at > clock_timestamp() - make_interval(secs => $2)))
        ORDER BY kind, o.delivered_at LIMIT 1`,
      [key, turnMs / 1000],
    );
    const o = other.rows[0];
    if (o?.kind === 'done') {
      return { kind: 'done', gateId: o.gate_id, deliveredAt: new Date(o.delivered_at ?? 0).toISOString(), detail: o.detail };
    }
    if (o) return { kind: 'wait', gateId: o.gate_id };
    const r = await client.query<{ attempts: number }>(
      'UPDATE rollbacks SET attempts = attempts + 1, attempt_at = clock_timestamp() WHERE idempotency_key = $1 RETURNING attempts',
      [key],
    );
    return { kind: 'go', attempt: Number(r.rows[0]?.attempts ?? 1) };
  });
}

/** Keep the deployment's turn while delivering (`release`: give it up, the attempt failed). */
export async function renewRollbackTurn(db: Db, key: string, release = false): Promise<void> {
  await db.query(
    `UPDATE rollbacks SET attempt_at = ${release ? 'NULL' : 'clock_timestamp()'} WHERE idempotency_key = $1 AND status = 'pending'`,
    [key],
  );
}

export async function finishRollback(db: Db, key: string, status: string, detail: string): Promise<void> {
  await db.query('UPDATE rollbacks SET status = $2, detail = $3, delivered_at = now(), attempt_at = NULL WHERE idempotency_key = $1', [
    key,
    status,
    detail,
  ]);
}

export async function recordDecision(db: Db, r: GateResult, runId: string, startedAt: string, input: unknown): Promise<void> {
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
      runId,
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
      JSON.stringify(input),
      startedAt,
    ],
  );
}

/** A recorded gate decision with when it started and was decided. */
export interface GateRecord extends GateResult {
  startedAt: string;
  decidedAt: string;
}

/** The recorded gate decisions of a deployment decided since a time, newest first, at most `limit`. */
export async function gateRecords(db: Db, deployment: string, opts: { since?: string; limit?: number } = {}): Promise<GateRecord[]> {
  const r = await db.query(
    `SELECT gate_id, deployment, baseline_version, candidate_version, decision, effective_decision, reason, evidence, explanation,
            override, rollback, started_at, decided_at
     FROM gate_decisions WHERE deployment = $1 AND ($2::timestamptz IS NULL OR decided_at >= $2)
     ORDER BY decided_at DESC, gate_id LIMIT $3`,
    [deployment, opts.since ?? null, Math.max(1, Math.floor(opts.limit ?? 20))],
  );
  return r.rows.map((g) => ({
    gateId: g.gate_id,
    deployment: g.deployment,
    baselineVersion: g.baseline_version,
    candidateVersion: g.candidate_version,
    decision: g.decision,
    effectiveDecision: g.effective_decision,
    reason: g.reason,
    ...(g.evidence ? { evidence: g.evidence } : {}),
    ...(g.explanation ? { explanation: g.explanation } : {}),
    ...(g.override ? { override: g.override } : {}),
    rollback: g.rollback,
    startedAt: new Date(g.started_at).toISOString(),
    decidedAt: new Date(g.decided_at).toISOString(),
  }));
}

export interface DecisionRow {
  decision: string;
  effective_decision: string;
  rollback: string | null;
  decided_at: Date;
}

/** The recorded decision of one gate, with its rollback status. */
export async function getDecision(db: Db, gateId: string): Promise<DecisionRow | undefined> {
  const r = await db.query<DecisionRow>(
    `SELECT decision, effective_decision, rollback->>'status' AS rollback, decided_at FROM gate_decisions WHERE gate_id = $1`,
    [gateId],
  );
  return r.rows[0];
}

/** Gate decisions of a deployment since a time, oldest first. */
export async function decisionsSince(
  db: Db,
  deployment: string,
  since: string,
): Promise<Array<{ candidate: string; decision: string; decidedAt: string }>> {
  const r = await db.query<{ candidate_version: string; decision: string; decided_at: Date }>(
    'SELECT candidate_version, decision, decided_at FROM gate_decisions WHERE deployment = $1 AND decided_at >= $2 ORDER BY decided_at',
    [deployment, since],
  );
  return r.rows.map((g) => ({ candidate: g.candidate_version, decision: g.decision, decidedAt: g.decided_at.toISOString() }));
}

/** One A/B comparison as it is recorded. */
export interface ComparisonRecord extends Comparison {
  id: string;
  explanation: Explanation;
}

export async function recordComparison(db: Db, c: ComparisonRecord): Promise<void> {
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

export interface NotificationClaim {
  idempotencyKey: string;
  gateId: string;
  deployment: string;
  targetKind: string;
  events: string[];
}

/** Claim a notification by its idempotency key and return its status ('pending' until delivered). */
export async function claimNotification(db: Db, c: NotificationClaim): Promise<{ status: string; detail: string }> {
  await db.query(
    `INSERT INTO notifications (idempotency_key, gate_id, deployment, target_kind, events, status) VALUES ($1,$2,$3,$4,$5,'pending')
     ON CONFLICT (idempotency_key) DO NOTHING`,
    [c.idempotencyKey, c.gateId, c.deployment, c.targetKind, c.events],
  );
  await db.query('UPDATE notifications SET attempts = attempts + 1 WHERE idempotency_key = $1', [c.idempotencyKey]);
  const r = await db.query<{ status: string; detail: string }>('SELECT status, detail FROM notifications WHERE idempotency_key = $1', [
    c.idempotencyKey,
  ]);
  return r.rows[0] ?? { status: 'pending', detail: '' };
}

/** Keep why the latest attempt of a notification that is still being retried failed. */
export async function noteNotificationAttempt(db: Db, key: string, detail: string): Promise<void> {
  await db.query(`UPDATE notifications SET detail = $2 WHERE idempotency_key = $1 AND status = 'pending'`, [key, detail]);
}

/**
 * A notification whose retries ran out: recorded as failed with the last attempt's reason (a
 * delivered one stays delivered). Resolves with the stored detail.
 */
export async function giveUpNotification(db: Db, key: string, why: string): Promise<string> {
  const r = await db.query<{ detail: string }>(
    `UPDATE notifications SET status = 'failed', delivered_at = now(),
       detail = $2 || CASE WHEN detail <> '' THEN '; last attempt: ' || detail ELSE '' END
     WHERE idempotency_key = $1 AND status = 'pending' RETURNING detail`,
    [key, why],
  );
  return r.rows[0]?.detail ?? why;
}

export async function finishNotification(db: Db, key: string, status: 'delivered' | 'failed', detail: string): Promise<void> {
  await db.query('UPDATE notifications SET status = $2, detail = $3, delivered_at = now() WHERE idempotency_key = $1', [
    key,
    status,
    detail,
  ]);
}

/** Keep a deployer URL that carries credentials or a query (often a token) for one gate. */
export async function storeDeployerUrl(db: Db, gateId: string, url: string): Promise<void> {
  await db.query('INSERT INTO deployer_urls (gate_id, url) VALUES ($1, $2) ON CONFLICT (gate_id) DO UPDATE SET url = EXCLUDED.url', [
    gateId,
    url,
  ]);
}

export async function deployerUrl(db: Db, gateId: string): Promise<string | undefined> {
  const r = await db.query<{ url: string }>('SELECT url FROM deployer_urls WHERE gate_id = $1', [gateId]);
  return r.rows[0]?.url;
}
