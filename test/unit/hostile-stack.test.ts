/**
 * Hostile conditions for `optiinfra stack up | status | down`: ports taken by other programs,
 * stale pid files naming dead or unrelated live processes, an unwritable home, two `stack up`
 * at once, nothing running, garbage state files. Each ends in a clear StackError or a correct
 * answer, and no process the stack did not start is signalled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startClickhouse } from '../../stack/clickhouse.js';
import { StackError } from '../../stack/errors.js';
import { pidFile } from '../../stack/paths.js';
import { freePort } from '../../stack/ports.js';
import { postmasterPid } from '../../stack/postgres-server.js';
import { isAlive, livePid, processStartMs, stopService } from '../../stack/processes.js';
import { stackDown, stackStatus, stackUp, upLockFile } from '../../stack/stack.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
const servers: Server[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'hostile-stack-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** An unrelated long-running process (a `sleep`), shown under `argv0` in /proc/<pid>/cmdline. */
async function unrelated(argv0?: string): Promise<number> {
  const c = spawn('sleep', ['60'], { stdio: 'ignore', ...(argv0 ? { argv0 } : {}) });
  children.push(c);
  await new Promise((r) => c.once('spawn', r));
  return c.pid as number;
}
const hourAgo = () => new Date(Date.now() - 3_600_000);

/** Environment in which every service fails at once without starting anything. */
const failingEnv = (): NodeJS.ProcessEnv => ({
  TEMPORAL_ADDRESS: 'temporal.invalid:7233',
  CLICKHOUSE_URL: 'http://127.0.0.1:1',
  DATABASE_URL: 'postgres://u@127.0.0.1:1/db',
});

describe('pid files that name processes the stack did not start', () => {
  it('a live process whose command line looks like the service but started after the pid file was written is not ours', async () => {
    const home = tmp();
    mkdirSync(join(home, 'run'));
    const f = pidFile(home, 'clickhouse');
    writeFileSync(f, '1\n'); // written before the process below existed
    utimesSync(f, hourAgo(), hourAgo());
    const pid = await unrelated('tail -f .stack/logs/clickhouse.log');
    writeFileSync(f, `${pid}\n`);
    utimesSync(f, hourAgo(), hourAgo());
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('clickhouse');
    expect(livePid(home, 'clickhouse')).toBeUndefined();
    expect(existsSync(f)).toBe(false);
    writeFileSync(f, `${pid}\n`);
    utimesSync(f, hourAgo(), hourAgo());
    expect(await stopService(home, 'clickhouse')).toBeUndefined();
    expect(isAlive(pid)).toBe(true);
  });

  it('the process a pid file was written for is still recognised', async () => {
    const home = tmp();
    mkdirSync(join(home, 'run'));
    const pid = await unrelated('clickhouse-server --config-file=x');
    writeFileSync(pidFile(home, 'clickhouse'), `${pid}\n`);
    expect(processStartMs(pid)).toBeLessThanOrEqual(Date.now() + 5000);
    expect(livePid(home, 'clickhouse')).toBe(pid);
  });

  it('a stale postmaster.pid naming an unrelated process is not a postmaster (so it is never signalled)', async () => {
    const data = tmp();
    const plain = await unrelated();
    writeFileSync(join(data, 'postmaster.pid'), `${plain}\n${data}\n`);
    expect(postmasterPid(data)).toBeUndefined();
    const lookalike = await unrelated(`postgres -D ${data}`);
    writeFileSync(join(data, 'postmaster.pid'), `${lookalike}\n${data}\n`);
    utimesSync(join(data, 'postmaster.pid'), hourAgo(), hourAgo());
    expect(postmasterPid(data)).toBeUndefined();
    // Fresh, and the command line of a postmaster: that one is.
    writeFileSync(join(data, 'postmaster.pid'), `${lookalike}\n${data}\n`);
    expect(postmasterPid(data)).toBe(lookalike);
    expect(isAlive(plain) && isAlive(lookalike)).toBe(true);
  });
});

describe('ports taken by other programs', () => {
  it('clickhouse: a port held by a plain TCP server is named with the variable to set; the server is left alone', async () => {
    const port = await freePort();
    const server = createServer((s) => s.destroy());
    servers.push(server);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const e = await startClickhouse({ home: tmp(), httpPort: port, tcpPort: await freePort() }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(StackError);
    expect((e as Error).message).toBe(
      `port ${port} is in use by something that is not ClickHouse; free it or set OPTIINFRA_CLICKHOUSE_HTTP_PORT (or CLICKHOUSE_URL for an existing server)`,
    );
    expect(server.listening).toBe(true);
  }, 15_000);
});

describe('stack up: the home and concurrent runs', () => {
  it('a home that cannot be written is a StackError naming it and OPTIINFRA_HOME', async () => {
    const file = join(tmp(), 'a-file');
    writeFileSync(file, 'x');
    const home = join(file, 'home');
    const e = await stackUp({ home, env: failingEnv(), log: () => undefined }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(StackError);
    expect((e as Error).message).toMatch(
      new RegExp(`^cannot write the stack home ${home} \\(ENOTDIR.*\\); make it writable or set OPTIINFRA_HOME to a writable directory$`),
    );
  }, 15_000);

  it('another live `stack up` on the same home: waited for, then a StackError naming its pid; its lock is kept', async () => {
    const home = tmp();
    mkdirSync(join(home, 'run'));
    writeFileSync(upLockFile(home), `${process.pid}\n`);
    const logs: string[] = [];
    const t0 = Date.now();
    const e = await stackUp({ home, env: failingEnv(), log: (s) => logs.push(s), lockWaitMs: 600 }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    expect(e).toBeInstanceOf(StackError);
    expect((e as Error).message).toBe(
      `another \`stack up\` or \`stack down\` (pid ${process.pid}) is working on the stack in ${home} and has not finished; wait for it, or stop that process and remove ${upLockFile(home)}`,
    );
    expect(logs).toEqual([`stack       waiting for another \`stack up\` or \`stack down\` (pid ${process.pid}) on ${home}`]);
    expect(readFileSync(upLockFile(home), 'utf8')).toBe(`${process.pid}\n`);
  }, 15_000);

  it('a lock left by a dead process, or by a pid reused since, is taken over and released afterwards', async () => {
    for (const holder of ['999999999', String(await unrelated())]) {
      const home = tmp();
      mkdirSync(join(home, 'run'));
      writeFileSync(upLockFile(home), `${holder}\n`);
      utimesSync(upLockFile(home), hourAgo(), hourAgo());
      const e = await stackUp({ home, env: failingEnv(), log: () => undefined, lockWaitMs: 60_000 }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(StackError);
      expect((e as Error).message).not.toContain('another `stack up`');
      expect(existsSync(upLockFile(home))).toBe(false);
    }
  }, 30_000);

  it('two at once on one home run one after the other', async () => {
    const home = tmp();
    const logs: string[] = [];
    const runs = await Promise.allSettled([
      stackUp({ home, env: failingEnv(), log: (s) => logs.push(s) }),
      stackUp({ home, env: failingEnv(), log: (s) => logs.push(s) }),
    ]);
    expect(runs.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    for (const r of runs) expect(String((r as PromiseRejectedResult).reason)).not.toContain('another `stack up`');
    expect(logs.filter((l) => l.includes('waiting for another `stack up`'))).toHaveLength(1);
    expect(existsSync(upLockFile(home))).toBe(false);
  }, 30_000);

  it('`stack down` during a `stack up` waits for it, then stops; one on a home never started creates nothing', async () => {
    const home = tmp();
    mkdirSync(join(home, 'run'));
    writeFileSync(upLockFile(home), `${process.pid}\n`);
    const logs: string[] = [];
    const e = await stackDown({ home, env: {}, log: (s) => logs.push(s), lockWaitMs: 600 }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(StackError);
    expect((e as Error).message).toContain(`(pid ${process.pid}) is working on the stack in ${home}`);
    expect(logs).toEqual([`stack       waiting for another \`stack up\` or \`stack down\` (pid ${process.pid}) on ${home}`]);

    logs.length = 0;
    const t0 = Date.now();
    const down = stackDown({ home, env: {}, log: (s) => logs.push(s) });
    setTimeout(() => rmSync(upLockFile(home)), 500);
    await down;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(logs[0]).toContain('waiting for another');
    expect(logs.filter((l) => l.includes('not running'))).toHaveLength(3);
    expect(existsSync(upLockFile(home))).toBe(false);

    const never = join(tmp(), 'never-started');
    await stackDown({ home: never, env: {}, log: () => undefined });
    expect(existsSync(never)).toBe(false);
  }, 15_000);
});

describe('stack down and status on odd state', () => {
  it('down with nothing running says so for each service and signals nothing', async () => {
    const home = tmp();
    mkdirSync(join(home, 'run'));
    const pid = await unrelated();
    for (const svc of ['temporal', 'clickhouse', 'postgres', 'pglite'] as const) writeFileSync(pidFile(home, svc), `${pid}\n`);
    const logs: string[] = [];
    await stackDown({ home, env: {}, log: (s) => logs.push(s) });
    expect(logs.sort()).toEqual([
      'clickhouse  not running (nothing to stop)',
      'postgres    not running (nothing to stop)',
      'temporal    not running (nothing to stop)',
    ]);
    expect(isAlive(pid)).toBe(true);
  });

  it('status with garbage in endpoints.json and the pid files: every service down, no exception', async () => {
    const home = tmp();
    mkdirSync(join(home, 'run'));
    writeFileSync(
      join(home, 'endpoints.json'),
      JSON.stringify({ temporalAddress: '::::', clickhouseUrl: 'not a url', databaseUrl: 'postgres://%%%/x', databaseKind: 'postgres' }),
    );
    writeFileSync(pidFile(home, 'temporal'), '\u0000\u0001garbage');
    writeFileSync(pidFile(home, 'clickhouse'), '99999999999999999999');
    writeFileSync(pidFile(home, 'postgres'), '-1\n');
    const rows = await stackStatus({ home, env: {} });
    expect(rows.map((r) => [r.service, r.state])).toEqual([
      ['temporal', 'down'],
      ['clickhouse', 'down'],
      ['postgres', 'down'],
    ]);
    expect(rows[2]?.detail).toContain('postgres://%%%/x');
  }, 30_000);
});
