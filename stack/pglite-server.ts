/**
 * PGlite served over the PostgreSQL wire protocol, so `pg` code runs unchanged when no
 * PostgreSQL server is configured. Started (detached) by `stack/postgres.ts`:
 *
 *   node --import tsx stack/pglite-server.ts --port 15432 --data .stack/pglite [--max-connections 64]
 *
 * Connections: PGlite is a single-session database. PGLiteSocketServer (pglite-socket 0.2.x)
 * accepts up to `maxConnections` sockets (its own default is 1; a second socket then gets
 * "Too many connections" and is closed) and multiplexes them onto that one session through a
 * query queue: one protocol message runs at a time, and while a transaction is open only the
 * connection that opened it is served. Consequences: session state (SET, temp tables, named
 * prepared statements) is shared by all connections, and concurrent queries are serialised.
 * We raise the limit to 64 by default so a `pg.Pool` (default max 10) works.
 */
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

export const DEFAULT_MAX_CONNECTIONS = 64;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '15432' },
    host: { type: 'string', default: '127.0.0.1' },
    data: { type: 'string' },
    'max-connections': { type: 'string', default: String(DEFAULT_MAX_CONNECTIONS) },
  },
});

const port = Number(values.port);
const maxConnections = Number(values['max-connections']);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`pglite-server: --port must be an integer 0..65535 (got '${values.port}')`);
  process.exit(2);
}
if (!Number.isInteger(maxConnections) || maxConnections < 1) {
  console.error(`pglite-server: --max-connections must be a positive integer`);
  process.exit(2);
}

const dataDir = values.data && values.data !== 'memory' ? resolve(values.data) : undefined;
if (dataDir) mkdirSync(dataDir, { recursive: true });

const started = Date.now();
const db = await PGlite.create(dataDir ?? 'memory://');
const server = new PGLiteSocketServer({ db, port, host: values.host, maxConnections });
server.addEventListener('error', (e) => {
  console.error(`pglite-server: socket error: ${String((e as CustomEvent).detail)}`);
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

try {
  await server.start();
} catch (err) {
  console.error(`pglite-server: cannot listen on ${values.host}:${port}: ${String(err)}`);
  await db.close().catch(() => undefined);
  process.exit(1);
}
console.log(
  `pglite-server: listening on ${values.host}:${port}, data ${dataDir ?? 'in memory'}, ` +
    `max ${maxConnections} connections, ready in ${Date.now() - started} ms`,
);
