/** Deployments and their collection cursors. */
import { raise } from '../../../common/failures.js';
import type { Db } from './db.js';

export interface DeploymentRow {
  id: string;
  source: unknown;
  sample_rate: number;
}

/**
 * Register a deployment or update it. A cursor belongs to the source that gave it: when the source
 * changes, the stored cursor is cleared (the next cycle reads the new source from its start; records
 * stored before are recognised by id) and `cursorReset` is true. A cycle still running on the old
 * cursor then stops at its next cursor move (`CursorConflict`).
 */
export async function upsertDeployment(db: Db, d: DeploymentRow): Promise<{ cursorReset: boolean }> {
  const r = await db.query<{ reset: number }>(
    `WITH prev AS (SELECT source FROM deployments WHERE id = $1),
     up AS (
       INSERT INTO deployments (id, source, sample_rate) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET source = EXCLUDED.source, sample_rate = EXCLUDED.sample_rate, updated_at = now()
       RETURNING id
     ),
     reset AS (
       UPDATE collection_cursors SET cursor = NULL, cycle_id = NULL, updated_at = now()
       WHERE deployment = $1 AND cursor IS NOT NULL AND EXISTS (SELECT 1 FROM prev WHERE prev.source IS DISTINCT FROM $2::jsonb)
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM reset)::int AS reset, (SELECT count(*) FROM up)::int AS upserted`,
    [d.id, JSON.stringify(d.source), d.sample_rate],
  );
  return { cursorReset: (r.rows[0]?.reset ?? 0) > 0 };
}

export async function getDeployment(db: Db, id: string): Promise<DeploymentRow | undefined> {
  const r = await db.query<DeploymentRow>('SELECT id, source, sample_rate FROM deployments WHERE id = $1', [id]);
  return r.rows[0];
}

/** The deployment, or an `UnknownDeployment` failure that says how to add it. */
export async function registeredDeployment(db: Db, id: string): Promise<DeploymentRow> {
  const d = await getDeployment(db, id);
  if (!d)
    raise(
      'UnknownDeployment',
      `deployment '${id}' is not registered: add it with 'optiinfra deployment add ${id} --source-url URL' (or --source-path FILE)`,
    );
  return d;
}

export async function listDeployments(db: Db): Promise<Array<DeploymentRow & { cursor: string | null }>> {
  const r = await db.query(
    `SELECT d.id, d.source, d.sample_rate, c.cursor FROM deployments d
     LEFT JOIN collection_cursors c ON c.deployment = d.id ORDER BY d.id`,
  );
  return r.rows;
}

export async function getCursor(db: Db, deployment: string): Promise<string | null> {
  const r = await db.query<{ cursor: string | null }>('SELECT cursor FROM collection_cursors WHERE deployment = $1', [deployment]);
  return r.rows[0]?.cursor ?? null;
}

export type CursorAdvance = 'advanced' | 'already' | 'conflict';

/**
 * Compare-and-set: move the cursor from `from` to `to`. Re-running the same advance (activity
 * retry) answers 'already'; a cursor moved by someone else answers 'conflict'.
 */
export async function advanceCursor(db: Db, deployment: string, from: string | null, to: string, cycleId: string): Promise<CursorAdvance> {
  await db.query(
    `INSERT INTO collection_cursors (deployment, cursor, cycle_id) VALUES ($1, NULL, NULL) ON CONFLICT (deployment) DO NOTHING`,
    [deployment],
  );
  const r = await db.query(
    `UPDATE collection_cursors SET cursor = $3, cycle_id = $4, updated_at = now()
     WHERE deployment = $1 AND cursor IS NOT DISTINCT FROM $2::text`,
    [deployment, from, to, cycleId],
  );
  if (r.rowCount === 1) return 'advanced';
  return (await getCursor(db, deployment)) === to ? 'already' : 'conflict';
}

export type CycleClaim = { claimed: true } | { claimed: false; runningCycle: string; leaseUntil: string };

/**
 * Take the deployment's collection lease for `cycleId` (again, after continue-as-new or a retry),
 * unless another cycle holds an unexpired one.
 */
export async function claimCycle(db: Db, deployment: string, cycleId: string, leaseSeconds: number): Promise<CycleClaim> {
  await db.query(
    `INSERT INTO collection_cursors (deployment, cursor, cycle_id) VALUES ($1, NULL, NULL) ON CONFLICT (deployment) DO NOTHING`,
    [deployment],
  );
  const r = await db.query(
    `UPDATE collection_cursors SET running_cycle = $2, lease_until = now() + make_interval(secs => $3)
     WHERE deployment = $1 AND (running_cycle IS NULL OR running_cycle = $2 OR lease_until < now())`,
    [deployment, cycleId, leaseSeconds],
  );
  if (r.rowCount === 1) return { claimed: true };
  const held = await db.query<{ running_cycle: string; lease_until: Date }>(
    'SELECT running_cycle, lease_until FROM collection_cursors WHERE deployment = $1',
    [deployment],
  );
  const h = held.rows[0];
  return { claimed: false, runningCycle: h?.running_cycle ?? '?', leaseUntil: h?.lease_until?.toISOString() ?? '?' };
}

/** Extend the lease of the cycle that holds it (no-op for any other cycle). */
export async function renewCycle(db: Db, deployment: string, cycleId: string, leaseSeconds: number): Promise<void> {
  await db.query(
    `UPDATE collection_cursors SET lease_until = now() + make_interval(secs => $3) WHERE deployment = $1 AND running_cycle = $2`,
    [deployment, cycleId, leaseSeconds],
  );
}

export async function releaseCycle(db: Db, deployment: string, cycleId: string): Promise<void> {
  await db.query(`UPDATE collection_cursors SET running_cycle = NULL, lease_until = NULL WHERE deployment = $1 AND running_cycle = $2`, [
    deployment,
    cycleId,
  ]);
}

/** The deployment's notification targets (raw; validated by the caller). */
export async function getNotifyTargets(db: Db, deployment: string): Promise<unknown[]> {
  const r = await db.query<{ notify: unknown }>('SELECT notify FROM deployments WHERE id = $1', [deployment]);
  const v = r.rows[0]?.notify;
  return Array.isArray(v) ? v : [];
}

export async function setNotifyTargets(db: Db, deployment: string, targets: unknown[]): Promise<void> {
  await db.query('UPDATE deployments SET notify = $2, updated_at = now() WHERE id = $1', [deployment, JSON.stringify(targets)]);
}

/** The cycle holding the deployment's collection lease now (unexpired), if any. */
export async function runningCycle(db: Db, deployment: string): Promise<string | undefined> {
  const r = await db.query<{ running_cycle: string }>(
    'SELECT running_cycle FROM collection_cursors WHERE deployment = $1 AND running_cycle IS NOT NULL AND lease_until >= now()',
    [deployment],
  );
  return r.rows[0]?.running_cycle ?? undefined;
}
