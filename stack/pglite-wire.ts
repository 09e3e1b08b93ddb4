/**
 * A PostgreSQL wire-protocol server in front of one PGlite instance, safe for any number of
 * client connections.
 *
 * PGlite is a single session. Clients are therefore served one at a time: a connection that
 * sends a message takes the session and keeps it until the session is idle again — its last
 * ReadyForQuery says "idle" (not in a transaction, not failed) and no extended-query sequence
 * (Parse/Bind/Describe/Execute before Sync) is open. Other connections' messages wait in a
 * first-come queue meanwhile. So the messages of two clients never interleave: each simple
 * query, each extended-query sequence up to its Sync, and each transaction from BEGIN to
 * COMMIT/ROLLBACK runs alone, and every response goes to the connection that asked.
 *
 * Per connection, the server also
 * - gives named prepared statements and portals private names (two connections may both
 *   prepare "q1"), and closes them when the connection ends;
 * - rolls back an open transaction and ends an open extended-query sequence when the
 *   connection closes, so the session is clean for the next one;
 * - ends a connection that holds the session idle inside a transaction for longer than
 *   `idleInTransactionMs` (FATAL 25P03), so one stuck client cannot block the others forever.
 *
 * What one PGlite session cannot separate stays shared between connections, as with a
 * transaction-pooling proxy: session settings (SET outside a transaction), temporary tables,
 * session-level advisory locks, LISTEN, and SQL-level PREPARE. Cancel requests are ignored.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';
import {
  CANCEL_REQUEST,
  closeStatement,
  COPY_FAIL,
  errorResponse,
  GSSENC_REQUEST,
  MAX_MESSAGE_LENGTH,
  MAX_STARTUP_LENGTH,
  privateNames,
  readyState,
  simpleQuery,
  SSL_REQUEST,
  SYNC,
} from './pglite-protocol.js';

export const DEFAULT_MAX_CONNECTIONS = 256;
export const DEFAULT_IDLE_IN_TRANSACTION_MS = 60_000;

export interface WireServerOptions {
  host?: string;
  port: number;
  maxConnections?: number;
  idleInTransactionMs?: number;
  log?: (line: string) => void;
}

interface Conn {
  id: number;
  socket: Socket;
  buf: Buffer;
  /** The StartupMessage has been read: what follows are typed messages. */
  started: boolean;
  /** Complete messages waiting to be run. */
  pending: Buffer[];
  /** Transaction status of the last ReadyForQuery: I idle, T in a transaction, E failed transaction. */
  status: 'I' | 'T' | 'E';
  /** Messages have run since the last ReadyForQuery (an extended-query sequence or a COPY is open). */
  open: boolean;
  /** Private names of this connection's prepared statements. */
  statements: Set<string>;
  queued: boolean;
  closed: boolean;
  idleTimer?: NodeJS.Timeout;
}

export class PgliteWireServer {
  private server?: Server;
  private readonly conns = new Set<Conn>();
  private owner?: Conn;
  private queue: Conn[] = [];
  private pumping = false;
  private stopping = false;
  private nextId = 1;
  private readonly maxConnections: number;
  private readonly idleInTransactionMs: number;
  private readonly log: (line: string) => void;

  constructor(
    private readonly db: PGlite,
    private readonly opts: WireServerOptions,
  ) {
    this.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.idleInTransactionMs = opts.idleInTransactionMs ?? DEFAULT_IDLE_IN_TRANSACTION_MS;
    this.log = opts.log ?? (() => undefined);
  }

  /** Listen; resolves with the port (useful with port 0). */
  async start(): Promise<number> {
    await this.db.waitReady;
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(this.opts.port, this.opts.host ?? '127.0.0.1', () => {
        server.off('error', rej);
        res();
      });
    });
    server.on('error', (e) => this.log(`server error: ${String(e)}`));
    return (server.address() as { port: number }).port;
  }

  /** Stop listening, drop every connection, wait for the running message. */
  async stop(): Promise<void> {
    this.stopping = true;
    const closed = new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    for (const c of this.conns) c.socket.destroy();
    const deadline = Date.now() + 5000;
    while (this.pumping && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await closed;
  }

  stats(): { connections: number; waiting: number; busy: boolean } {
    return { connections: this.conns.size, waiting: this.queue.length, busy: this.owner !== undefined };
  }

  private accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    if (this.conns.size >= this.maxConnections) {
      socket.end(errorResponse('FATAL', '53300', 'sorry, too many clients already'));
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const c: Conn = {
      id: this.nextId++,
      socket,
      buf: Buffer.alloc(0),
      started: false,
      pending: [],
      status: 'I',
      open: false,
      statements: new Set(),
      queued: false,
      closed: false,
    };
    this.conns.add(c);
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    socket.on('close', () => this.onClose(c));
  }

  private fail(c: Conn, code: string, text: string): void {
    if (!c.socket.destroyed) c.socket.end(errorResponse('FATAL', code, text));
    c.pending = [];
    c.buf = Buffer.alloc(0);
  }

  private onData(c: Conn, chunk: Buffer): void {
    if (c.closed) return;
    c.buf = c.buf.length ? Buffer.concat([c.buf, chunk]) : chunk;
    let added = false;
    for (;;) {
      if (!c.started) {
        if (c.buf.length < 8) break;
        const len = c.buf.readInt32BE(0);
        if (len < 8 || len > MAX_STARTUP_LENGTH) {
          this.fail(c, '08P01', 'invalid startup packet length');
          return;
        }
        if (c.buf.length < len) break;
        const code = c.buf.readInt32BE(4);
        const packet = c.buf.subarray(0, len);
        c.buf = c.buf.subarray(len);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          c.socket.write('N');
          continue;
        }
        if (code === CANCEL_REQUEST) {
          c.socket.end(); // PGlite runs one statement at a time to completion: nothing to cancel
          return;
        }
        if (code >> 16 !== 3) {
          this.fail(c, '0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
          return;
        }
        c.started = true;
        c.pending.push(Buffer.from(packet));
        added = true;
        continue;
      }
      if (c.buf.length < 5) break;
      const len = c.buf.readInt32BE(1);
      if (len < 4 || len > MAX_MESSAGE_LENGTH) {
        this.fail(c, '08P01', 'invalid message length');
        return;
      }
      if (c.buf.length < 1 + len) break;
      c.pending.push(Buffer.from(c.buf.subarray(0, 1 + len)));
      c.buf = c.buf.subarray(1 + len);
      added = true;
    }
    if (!added) return;
    if (this.owner === c) {
      this.clearIdleTimer(c);
    } else if (!c.queued) {
      c.queued = true;
      this.queue.push(c);
    }
    this.kick();
  }

  private onClose(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    c.pending = [];
    this.conns.delete(c);
    this.clearIdleTimer(c);
    if (this.owner === c) {
      this.kick(); // the pump cleans up and releases
    } else if (c.statements.size > 0) {
      if (!c.queued) {
        c.queued = true;
        this.queue.push(c);
      }
      this.kick();
    } else if (c.queued) {
      this.queue = this.queue.filter((q) => q !== c);
      c.queued = false;
    }
  }

  private kick(): void {
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        let c = this.owner;
        if (!c) {
          c = this.queue.shift();
          if (!c) return;
          c.queued = false;
          this.owner = c;
        }
        if (c.closed) {
          await this.cleanUp(c);
          this.release(c);
          continue;
        }
        if (c.pending.length > 0) {
          await this.runPending(c);
          continue;
        }
        if (c.status === 'I' && !c.open) {
          this.release(c);
          continue;
        }
        // Inside a transaction or an extended-query sequence: the session stays with this
        // connection until its next message.
        this.armIdleTimer(c);
        return;
      }
    } catch (e) {
      this.log(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    } finally {
      this.pumping = false;
      if (!this.stopping && (this.queue.length > 0 || (this.owner && (this.owner.pending.length > 0 || this.owner.closed)))) {
        setImmediate(() => this.kick());
      }
    }
  }

  private release(c: Conn): void {
    this.clearIdleTimer(c);
    if (this.owner === c) this.owner = undefined;
  }

  private armIdleTimer(c: Conn): void {
    if (c.idleTimer || this.idleInTransactionMs <= 0) return;
    c.idleTimer = setTimeout(() => {
      c.idleTimer = undefined;
      if (this.owner !== c || c.closed || c.pending.length > 0) return;
      this.log(`connection ${c.id}: idle in transaction for ${this.idleInTransactionMs} ms, terminated`);
      if (!c.socket.destroyed) {
        c.socket.end(errorResponse('FATAL', '25P03', 'terminating connection due to idle-in-transaction timeout'));
      }
      c.socket.destroy();
    }, this.idleInTransactionMs);
    c.idleTimer.unref();
  }

  private clearIdleTimer(c: Conn): void {
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.idleTimer = undefined;
  }

  /** Run the connection's pending messages (up to a Terminate) as one batch and send the answers. */
  private async runPending(c: Conn): Promise<void> {
    const batch: Buffer[] = [];
    let terminate = false;
    while (c.pending.length > 0) {
      const m = c.pending.shift()!;
      if (c.started && m[0] === 0x58 /* X */ && m.length === 5) {
        terminate = true;
        break;
      }
      try {
        batch.push(c.started ? privateNames(m, c.id, c.statements) : m);
      } catch (e) {
        this.fail(c, '08P01', e instanceof Error ? e.message : String(e));
        c.socket.destroy();
        terminate = true;
        break;
      }
    }
    if (batch.length > 0) {
      let out: Uint8Array;
      try {
        out = await this.db.execProtocolRaw(Buffer.concat(batch));
      } catch (e) {
        const text = e instanceof Error ? e.message : String(e);
        this.log(`connection ${c.id}: ${text}`);
        c.open = true; // the clean-up then ends whatever may be open
        c.status = 'E';
        this.fail(c, 'XX000', `terminating connection after an internal error: ${text}`);
        c.socket.destroy();
        return;
      }
      const { endsReady, status } = readyState(out);
      if (status) c.status = status;
      const onlyFlush = batch.every((m) => m[0] === 0x48 /* H */);
      if (out.length > 0) c.open = !endsReady;
      else if (!onlyFlush) c.open = true;
      if (out.length > 0 && !c.socket.destroyed) c.socket.write(out);
    }
    if (terminate) {
      c.socket.end();
      this.onClose(c);
    }
  }

  /** After a connection closed: end what it left open and drop its prepared statements. */
  private async cleanUp(c: Conn): Promise<void> {
    try {
      if (c.open || c.status !== 'I') {
        // CopyFail ends a COPY FROM STDIN (and is ignored outside one); Sync ends an extended-query sequence.
        let { status } = readyState(await this.db.execProtocolRaw(Buffer.concat([COPY_FAIL, SYNC])));
        if (status !== 'I') status = readyState(await this.db.execProtocolRaw(simpleQuery('ROLLBACK'))).status;
        if (status !== 'I') this.log(`connection ${c.id}: session not idle after clean-up (status ${status ?? '?'})`);
      }
      if (c.statements.size > 0) {
        await this.db.execProtocolRaw(Buffer.concat([...[...c.statements].map(closeStatement), SYNC]));
      }
    } catch (e) {
      this.log(`connection ${c.id}: clean-up failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    c.statements.clear();
    c.open = false;
    c.status = 'I';
  }
}
