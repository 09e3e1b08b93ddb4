/**
 * PostgreSQL helpers of the stack: the embedded PGlite fallback served over the wire protocol by
 * stack/pglite-server.ts, and scratch databases on an existing server. The stack's own
 * PostgreSQL server is stack/postgres-server.ts.
 */
import { join, resolve } from 'node:path';
import pg from 'pg';
import { dataDirHolder } from './data-dir-lock.js';
import { StackError } from './errors.js';
import { postgresHealthy } from './health.js';
import { repoRoot } from './paths.js';
import { portInUse } from './ports.js';
import { livePid, spawnDetached, stopService, waitReady } from './processes.js';
import { DEFAULT_MAX_CONNECTIONS } from './pglite-wire.js';

/** Connections PGlite's server accepts at once; it serves them one at a time (see stack/pglite-wire.ts). */
export const PGLITE_MAX_CONNECTIONS = DEFAULT_MAX_CONNECTIONS;

/**
 * The URL of a PGlite server. `application_name=pglite` marks it as the single-session embedded
 * database: `createPool` (activities/storage/postgres/db.ts) then keeps one connection.
 */
export function pgliteUrl(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres?application_name=pglite`;
}

/** Start stack/pglite-server.ts on the given port, or reuse a PostgreSQL already answering there. */
export async function startPglite(opts: {
  home: string;
  port: number;
  dataDir?: string;
  maxConnections?: number;
}): Promise<{ url: string; pid: number; maxConnections: number }> {
  const url = pgliteUrl(opts.port);
  const maxConnections = opts.maxConnections ?? PGLITE_MAX_CONNECTIONS;
  const existing = livePid(opts.home, 'pglite');
  if (await postgresHealthy(url)) return { url, pid: existing ?? 0, maxConnections };
  if (await portInUse(opts.port)) {
    throw new StackError(
      `port ${opts.port} is in use by something that does not answer as PostgreSQL; free it or set OPTIINFRA_PGLITE_PORT (or DATABASE_URL for an existing server)`,
    );
  }
  if (existing !== undefined) await stopService(opts.home, 'pglite');
  const holder = opts.dataDir ? dataDirHolder(resolve(opts.dataDir)) : undefined;
  if (holder) {
    throw new StackError(
      `the PGlite data directory ${resolve(opts.dataDir!)} is in use by another pglite-server (pid ${holder.pid}) that does not answer on port ${opts.port}; ` +
        `stop it (kill ${holder.pid}) or set OPTIINFRA_PGLITE_PORT to its port`,
    );
  }
  const root = repoRoot();
  const args = [
    '--import',
    'tsx',
    join(root, 'stack', 'pglite-server.ts'),
    '--port',
    String(opts.port),
    '--data',
    opts.dataDir ? resolve(opts.dataDir) : 'memory',
    '--max-connections',
    String(maxConnections),
  ];
  // cwd = repository root so `--import tsx` resolves from its node_modules.
  const s = spawnDetached(opts.home, 'pglite', process.execPath, args, root);
  await waitReady(opts.home, 'pglite', s, 'pglite-server', () => postgresHealthy(url, 3000));
  return { url, pid: s.pid, maxConnections };
}

/** An existing PostgreSQL server to create databases on: DATABASE_URL, else 127.0.0.1:5432 if it answers. */
export async function postgresAdminUrl(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  return env.DATABASE_URL?.trim() || ((await postgresHealthy(local)) ? local : undefined);
}

/** Create database `name` (a plain identifier) on the server of `adminUrl`; `drop` removes it again. */
export async function createScratchDatabase(adminUrl: string, name: string): Promise<{ url: string; drop(): Promise<void> }> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new StackError(`'${name}' is not a plain database name`);
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
