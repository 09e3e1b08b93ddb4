/**
 * PGlite served over the PostgreSQL wire protocol: the stack's fallback database when no
 * PostgreSQL server programs can be had. Started (detached) by `stack/postgres.ts`:
 *
 *   node --import tsx stack/pglite-server.ts --port 15432 --data .stack/pglite
 *
 * PGlite is a single session: stack/pglite-wire.ts serves its clients one at a time (a
 * transaction or an extended-query sequence runs alone, the others wait their turn), so
 * concurrent connections never see each other's messages.
 */
import { PGlite } from '@electric-sql/pglite';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
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
if (dataDir) mkdirSync(dataDir, { recursive: true });

const started = Date.now();
const db = await PGlite.create(dataDir ?? 'memory://');
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
