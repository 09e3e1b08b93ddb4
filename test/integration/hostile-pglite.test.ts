/**
 * The PGlite fallback server (stack/pglite-server.ts) under hostile use of its data directory:
 * a second server started on the directory of a running one, stale locks left by a SIGKILLed
 * server (its pid dead, or reused by an unrelated process), and SIGKILL in the middle of a
 * stream of committed transactions, five times over, restarting on the same directory each time.
 * Real server processes (`node --import tsx stack/pglite-server.ts`), real `pg` clients; the
 * servers of the global setup are not used.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../common/random.js';
import { LOCK_FILE } from '../../stack/data-dir-lock.js';
import { repoRoot } from '../../stack/paths.js';
import { freePort } from '../../stack/ports.js';
import { startPglite } from '../../stack/postgres.js';
import { alive } from '../helpers/processes.js';

const START_BOUND_MS = 60_000;

interface Server {
  child: ChildProcess;
  pid: number;
  port: number;
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.pid && alive(c.pid)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'hostile-pglite-'));
  dirs.push(d);
  return join(d, 'data');
}

/**
 * Spawn a server on `dir` (port chosen by the OS); `ready` resolves when it listens, rejects when
 * it exits first. `unreaped`: its parent is a shell that execs `sleep`, which never reaps it, so
 * once killed it stays a zombie (`pid` is then the parent's).
 */
function spawnServer(dir: string, unreaped = false): { server: Omit<Server, 'port'>; ready: Promise<Server> } {
  const args = ['--import', 'tsx', join(repoRoot(), 'stack', 'pglite-server.ts'), '--port', '0', '--data', dir];
  const child = unreaped
    ? spawn('sh', ['-c', '"$@" & exec sleep 120', 'sh', process.execPath, ...args], { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  const server = { child, pid: child.pid!, output: () => out, exit };
  const ready = new Promise<Server>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no 'listening' within ${START_BOUND_MS} ms:\n${out}`)), START_BOUND_MS);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res({ ...server, port: Number(m[1]) });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exit.then((e) => {
      clearTimeout(timer);
      rej(new Error(`server exited before listening (${e.signal ?? `code ${e.code}`}):\n${out}`));
    });
  });
  ready.catch(() => undefined);
  return { server, ready };
}

const startServer = (dir: string) => spawnServer(dir).ready;

async function connect(port: number): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, query_timeout: 30_000 });
  c.on('error', () => undefined); // the server is killed under it
  await c.connect();
  return c;
}

async function ids(port: number, table: string): Promise<number[]> {
  const c = await connect(port);
  try {
    return (await c.query(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id as number);
  } finally {
    await c.end();
  }
}

describe('the PGlite server and its data directory', () => {
  it('refuses a second server on the directory of a running one, which keeps serving', async () => {
    // Pins: one server per data directory; the second exits non-zero naming the directory and
    // the first one's pid, without listening, and the first one's data and service are intact;
    // the stack's start refuses the same way with one line.
    // Failed before: the second server started too ("pglite-server: listening on ..."). By hand:
    // each then wrote from its own buffers (each saw only its own 50 rows), and after both
    // stopped and a restart only the rows of the one that stopped last were there — the other's
    // acknowledged commits were gone.
    const dir = tempDir();
    const a = await startServer(dir);
    const ca = await connect(a.port);
    await ca.query('CREATE TABLE t (id int PRIMARY KEY)');
    await ca.query('INSERT INTO t VALUES (1)');

    const b = spawnServer(dir);
    const listened = await b.ready.then(
      () => true,
      () => false,
    );
    expect(listened, b.server.output()).toBe(false);
    const bExit = await b.server.exit;
    expect(bExit.signal).toBeNull();
    expect(bExit.code).not.toBe(0);
    expect(b.server.output()).toContain(`data directory ${dir} is in use by the pglite-server with pid ${a.pid}`);

    // The stack's start (stack/postgres.ts) says so before it spawns anything.
    const home = join(dir, '..', 'home');
    await expect(startPglite({ home, port: await freePort(), dataDir: dir })).rejects.toThrow(
      `the PGlite data directory ${dir} is in use by another pglite-server (pid ${a.pid})`,
    );

    expect(alive(a.pid)).toBe(true);
    await ca.query('INSERT INTO t VALUES (2)');
    expect((await ca.query('SELECT id FROM t ORDER BY id')).rows).toEqual([{ id: 1 }, { id: 2 }]);
    await ca.end();

    // A clean stop releases the directory: the next server starts and finds both rows.
    a.child.kill('SIGTERM');
    expect(await a.exit).toEqual({ code: 0, signal: null });
    const c = await startServer(dir);
    expect(await ids(c.port, 't')).toEqual([1, 2]);
    c.child.kill('SIGTERM');
    expect((await c.exit).code).toBe(0);
  });

  it('takes over a stale lock: its server SIGKILLed (reaped or a zombie), its pid reused, or unreadable', async () => {
    // Pins: a lock left by a SIGKILLed server (pid dead, or a zombie its parent never reaps), one
    // whose pid now belongs to an unrelated process started later, and an unreadable one never
    // block a restart, and the unrelated process is left alone.
    // Failed before: at its first check (ENOENT: no lock file) — there was no lock at all, so
    // nothing could go stale; this pins that the lock added with the first test does not refuse
    // too much.
    const dir = tempDir();
    const lock = join(dir, LOCK_FILE);
    let s = await startServer(dir);
    let c = await connect(s.port);
    await c.query('CREATE TABLE t (id int PRIMARY KEY)');
    await c.query('INSERT INTO t VALUES (1)');
    await c.end();
    s.child.kill('SIGKILL');
    await s.exit;
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(s.pid); // left behind, its pid dead

    s = await startServer(dir);
    expect(await ids(s.port, 't')).toEqual([1]);
    s.child.kill('SIGKILL');
    await s.exit;

    // The same lock, its pid now that of a live process that started after the server did.
    const other = spawn('sleep', ['120'], { stdio: 'ignore' });
    children.push(other);
    const left = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number };
    writeFileSync(lock, JSON.stringify({ ...left, pid: other.pid }));
    s = await startServer(dir);
    c = await connect(s.port);
    await c.query('INSERT INTO t VALUES (2)');
    await c.end();
    expect(alive(other.pid!)).toBe(true);
    s.child.kill('SIGKILL');
    await s.exit;

    writeFileSync(lock, '');
    s = await startServer(dir);
    expect(await ids(s.port, 't')).toEqual([1, 2]);
    s.child.kill('SIGKILL');
    await s.exit;

    // A server whose parent never reaps it: SIGKILLed, it stays a zombie, its pid still taken.
    const z = await spawnServer(dir, true).ready;
    const zpid = (JSON.parse(readFileSync(lock, 'utf8')) as { pid: number }).pid;
    expect(zpid).not.toBe(z.pid);
    c = await connect(z.port);
    await c.query('INSERT INTO t VALUES (3)');
    await c.end();
    process.kill(zpid, 'SIGKILL');
    const state = () => {
      const stat = readFileSync(`/proc/${zpid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    };
    for (let i = 0; i < 500 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(state()).toBe('Z');
    s = await startServer(dir);
    expect(await ids(s.port, 't')).toEqual([1, 2, 3]);
    s.child.kill('SIGTERM');
    expect((await s.exit).code).toBe(0);
  });

  it('SIGKILLed five times in a stream of commits: each restart keeps every acknowledged commit, once', async () => {
    // Pins: a commit the server acknowledged survives SIGKILL of the server (no fsync is needed
    // for that: the WAL is written to the files before COMMIT is answered); an unacknowledged
    // one is there entirely or not at all; nothing is applied twice; the server starts again on
    // the same directory every time; index and table agree after recovery.
    // Failed before: passed — PGlite writes its WAL through to the data directory at each commit
    // and recovers from it on the next start (its -F, fsync off, only matters if the machine
    // itself goes down; see README).
    const seed = Number(process.env.HOSTILE_SEED ?? 20_240_601);
    const rand = mulberry32(seed);
    const dir = tempDir();
    let s = await startServer(dir);
    const setup = await connect(s.port);
    // No key on w.id: a transaction applied twice would show as two rows.
    await setup.query('CREATE TABLE w (id int NOT NULL, payload text NOT NULL)');
    await setup.query('CREATE INDEX w_id ON w (id)');
    await setup.query('CREATE TABLE tally (one int PRIMARY KEY, n int NOT NULL)');
    await setup.query('INSERT INTO tally VALUES (1, 0)');
    await setup.end();

    const payload = (id: number) => `row-${id}-${'abcdefghij'.repeat(1 + (id % 7) * 60)}`;
    let committed = new Set<number>();
    let next = 1;
    for (let round = 0; round < 5; round++) {
      const acked: number[] = [];
      let inFlight: number | undefined;
      const target = 20 + Math.floor(rand() * 60);
      const c = await connect(s.port);
      const server = s;
      try {
        for (;;) {
          const id = next++;
          inFlight = id;
          await c.query('BEGIN');
          await c.query('INSERT INTO w (id, payload) VALUES ($1, $2)', [id, payload(id)]);
          await c.query('UPDATE tally SET n = n + 1 WHERE one = 1');
          await c.query('COMMIT');
          acked.push(id);
          inFlight = undefined;
          if (acked.length === target) setTimeout(() => server.child.kill('SIGKILL'), rand() * 8);
          if (acked.length > target + 10_000) throw new Error('the kill did not end the stream');
        }
      } catch (e) {
        expect(String(e)).not.toContain('the kill did not end the stream');
        expect(acked.length, `round ${round} (seed ${seed}): ${String(e)}`).toBeGreaterThanOrEqual(target);
      }
      await c.end().catch(() => undefined);
      expect((await s.exit).signal).toBe('SIGKILL');

      s = await startServer(dir);
      const v = await connect(s.port);
      const rows = (await v.query('SELECT id, payload FROM w ORDER BY id')).rows as { id: number; payload: string }[];
      const present = rows.map((r) => r.id);
      const label = `round ${round} (seed ${seed})`;
      expect(new Set(present).size, `${label}: a row twice`).toBe(present.length);
      const missing = [...committed, ...acked].filter((id) => !present.includes(id));
      expect(missing, `${label}: acknowledged commits lost`).toEqual([]);
      const unexpected = present.filter((id) => !committed.has(id) && !acked.includes(id) && id !== inFlight);
      expect(unexpected, `${label}: rows never written`).toEqual([]);
      for (const r of rows) expect(r.payload === payload(r.id), `${label}: payload of ${r.id}`).toBe(true);
      // The other table of each transaction agrees (all of a transaction or none of it) ...
      expect((await v.query('SELECT n FROM tally')).rows).toEqual([{ n: present.length }]);
      // ... and so does the index: every row found through it, nothing else.
      await v.query('BEGIN');
      await v.query('SET LOCAL enable_seqscan = off');
      const viaIndex = await v.query('SELECT count(*)::int AS n FROM w WHERE id = ANY($1)', [present]);
      const beyond = await v.query('SELECT count(*)::int AS n FROM w WHERE id >= $1', [next]);
      await v.query('COMMIT');
      expect(viaIndex.rows).toEqual([{ n: present.length }]);
      expect(beyond.rows).toEqual([{ n: 0 }]);
      await v.end();
      committed = new Set(present);
    }

    // Clean stop after the last round: a restart finds the same rows, and writes go on.
    s.child.kill('SIGTERM');
    expect(await s.exit).toEqual({ code: 0, signal: null });
    s = await startServer(dir);
    const c = await connect(s.port);
    await c.query('INSERT INTO w (id, payload) VALUES ($1, $2)', [next, payload(next)]);
    expect((await c.query('SELECT id FROM w ORDER BY id')).rows.map((r) => r.id)).toEqual([...committed, next].sort((x, y) => x - y));
    expect(committed.size).toBeGreaterThanOrEqual(5 * 20);
    await c.end();
    s.child.kill('SIGTERM');
    expect((await s.exit).code).toBe(0);
  });

  it('SIGKILLed during its first start, at any point, leaves a directory the next start opens', async () => {
    // Pins: a new data directory never holds PG_VERSION before the rest of the database (PGlite
    // resumes any directory holding PG_VERSION, and one without postgresql.conf, say, fails
    // every start), so a kill while it is being created is followed by a normal start.
    // Failed before: at 'PG_VERSION written' — PGlite unpacked a new database straight into the
    // directory, PG_VERSION before pg_hba.conf and pg_ident.conf; killed then, the directory
    // failed every later start (exit 1, "TypeError: Cannot read properties of undefined (reading
    // 'call')" from inside PGlite's start-up).
    const points: [string, (dir: string) => boolean][] = [
      ['initialising', (d) => existsSync(join(d, '.init')) || existsSync(join(d, 'pg_wal'))],
      ['moving in', (d) => existsSync(join(d, 'global'))],
      ['PG_VERSION written', (d) => existsSync(join(d, 'PG_VERSION'))],
    ];
    for (const [what, reached] of points) {
      const dir = tempDir();
      const first = spawnServer(dir);
      first.ready.catch(() => undefined);
      const gone = first.server.exit.then(() => true);
      // Poll the directory until the point is reached (or the start is over), then SIGKILL.
      for (let over = false; !over && !reached(dir); ) {
        over = await Promise.race([gone, new Promise<false>((r) => setTimeout(() => r(false), 1))]);
        if (/listening on/.test(first.server.output())) break;
      }
      first.server.child.kill('SIGKILL');
      await first.server.exit;
      const s = await startServer(dir).catch((e: Error) => {
        throw new Error(`killed at '${what}', the next start failed: ${e.message}`);
      });
      const c = await connect(s.port);
      await c.query('CREATE TABLE t (id int PRIMARY KEY)');
      await c.query('INSERT INTO t VALUES (1), (2)');
      expect((await c.query('SELECT count(*)::int AS n FROM t')).rows, what).toEqual([{ n: 2 }]);
      await c.end();
      s.child.kill('SIGTERM');
      expect((await s.exit).code, what).toBe(0);
      expect(existsSync(join(dir, '.init')), what).toBe(false);
    }
  });
});
