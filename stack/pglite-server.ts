/**
 * PGlite served over the PostgreSQL wire protocol: the stack's fallback database when no
 * PostgreSQL server programs can be had. Started (detached) by `stack/postgres.ts`:
 *
 *   node --import tsx stack/pglite-server.ts --port 15432 --data .stack/pglite
 *
 * PGlite is a single session: stack/pglite-wire.ts serves its clients one at a time (a
 * transaction or an extended-query sequence runs alone, the others wait their turn), so
 * concurrent connections never see each other's messages.
 *
 * The data directory is locked for the server's life (stack/data-dir-lock.ts): a second server on
 * it exits with code 1 naming the first one's pid, since PGlite itself does not refuse and two
 * servers would each discard the other's commits. A commit is answered once PGlite has written
 * its WAL to the directory, so a server killed with SIGKILL loses no acknowledged commit and
 * recovers on its next start (PGlite runs with fsync off: a crash of the machine itself can lose
 * the last commits; see README). A new directory is initialised aside and moved in with
 * PG_VERSION last, because PGlite resumes any directory holding PG_VERSION: killed while it
 * unpacked a new database, it left one it could never start again.
 */
import { PGlite } from '@electric-sql/pglite';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DataDirLocked, lockDataDir } from './data-dir-lock.js';
import { DEFAULT_IDLE_IN_TRANSACTION_MS, DEFAULT_MAX_CONNECTIONS, PgliteWireServer } from './pglite-wire.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '15432' },
    host: { type: 'string', default: '127.0.0.1' },
    data: { type: 'string' },
    'max-connections': { type: 'string', default: String(DEFAULT_MAX_CONNECTIONS) },
    'idle-in-transaction-timeout': { type: 'string', default: String(DEFAULT_IDLE_IN_TRANSACTION_MS / 1000) },
  },
});

const port = Number(values.port);
const maxConnections = Number(values['max-connections']);
const idleSeconds = Number(values['idle-in-transaction-timeout']);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`pglite-server: --port must be an integer 0..65535 (got '${values.port}')`);
  process.exit(2);
}
if (!Number.isInteger(maxConnections) || maxConnections < 1) {
  console.error(`pglite-server: --max-connections must be a positive integer`);
  process.exit(2);
}
if (!Number.isFinite(idleSeconds) || idleSeconds < 0) {
  console.error(`pglite-server: --idle-in-transaction-timeout must be a number of seconds >= 0 (0: never)`);
  process.exit(2);
}

const dataDir = values.data && values.data !== 'memory' ? resolve(values.data) : undefined;
if (dataDir) {
  mkdirSync(dataDir, { recursive: true });
  try {
    const lock = lockDataDir(dataDir);
    process.on('exit', lock.release);
  } catch (err) {
    console.error(`pglite-server: ${err instanceof DataDirLocked ? err.message : `cannot lock data directory ${dataDir}: ${String(err)}`}`);
    process.exit(1);
  }
}

/**
 * Create a new database in `dir` so that a kill at any moment leaves either a complete one or
 * none PGlite would resume: initialise it in `dir/.init`, then move the entries in, PG_VERSION last.
 */
async function initialise(dir: string): Promise<void> {
  const aside = join(dir, '.init');
  // Left by a start killed after PG_VERSION was moved in, or before: gone either way.
  rmSync(aside, { recursive: true, force: true });
  if (existsSync(join(dir, 'PG_VERSION'))) return;
  await (await PGlite.create(aside)).close();
  for (const name of readdirSync(aside).filter((n) => n !== 'PG_VERSION')) {
    rmSync(join(dir, name), { recursive: true, force: true }); // left by an earlier attempt
    renameSync(join(aside, name), join(dir, name));
  }
  renameSync(join(aside, 'PG_VERSION'), join(dir, 'PG_VERSION'));
  rmSync(aside, { recursive: true, force: true });
}

const started = Date.now();
let db: PGlite;
try {
  if (dataDir) await initialise(dataDir);
  db = await PGlite.create(dataDir ?? 'memory://');
} catch (err) {
  console.error(`pglite-server: cannot open the database in ${dataDir ?? 'memory'}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
const server = new PgliteWireServer(db, {
  host: values.host,
  port,
  maxConnections,
  idleInTransactionMs: idleSeconds * 1000,
  log: (line) => console.error(`pglite-server: ${line}`),
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`pglite-server: ${signal}, stopping`);
  try {
    await server.stop();
    await db.close();
  } catch (err) {
    console.error(`pglite-server: error while stopping: ${String(err)}`);
  }
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGHUP', () => void shutdown('SIGHUP'));

let bound: number;
try {
  bound = await server.start();
} catch (err) {
  console.error(`pglite-server: cannot listen on ${values.host}:${port}: ${String(err)}`);
  await db.close().catch(() => undefined);
  process.exit(1);
}
console.log(
  `pglite-server: listening on ${values.host}:${bound}, data ${dataDir ?? 'in memory'}, one session served to ` +
    `up to ${maxConnections} connections in turn, ready in ${Date.now() - started} ms`,
);
