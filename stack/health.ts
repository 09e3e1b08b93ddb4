/** Health checks: does a Temporal frontend, a ClickHouse server or a PostgreSQL server answer? */
import pg from 'pg';
import { Connection } from '@temporalio/client';
import { parseHostPort, portInUse } from './ports.js';

/** true when a Temporal frontend answers at `address` (gRPC, short timeout). */
export async function temporalHealthy(address: string, timeoutMs = 2000): Promise<boolean> {
  // Fail fast when nothing listens (a gRPC connect would keep retrying until its timeout).
  const hp = parseHostPort(address);
  if (hp && !(await portInUse(hp.port, hp.host, timeoutMs))) return false;
  let conn: Connection | undefined;
  try {
    conn = await Connection.connect({ address, connectTimeout: timeoutMs });
    // A channel can become "ready" against anything that speaks HTTP/2 (proxies, other gRPC
    // servers): ask the frontend itself.
    const c = conn;
    const info = await c.withDeadline(Date.now() + timeoutMs, () => c.workflowService.getSystemInfo({}));
    return info !== undefined && info !== null;
  } catch {
    return false;
  } finally {
    await conn?.close().catch(() => undefined);
  }
}

/** `GET /ping` answers `Ok.` */
export async function clickhouseHealthy(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const u = new URL(url);
    const r = await fetch(`${u.protocol}//${u.host}/ping`, { signal: AbortSignal.timeout(timeoutMs) });
    return r.ok && (await r.text()).trim() === 'Ok.';
  } catch {
    return false;
  }
}

/** A `pg` client can connect and `SELECT 1`. */
export async function postgresHealthy(url: string, timeoutMs = 3000): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query('SELECT 1 AS ok');
    return r.rows[0]?.ok === 1;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}
