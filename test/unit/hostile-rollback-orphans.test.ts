/**
 * A worker that dies (SIGKILL) while its rollback command runs: the command, and what it started,
 * must not keep working while a retry of the same idempotency key runs the command again on this
 * host. The worker is a real Node process calling `deliverRollback`; the command is a shell
 * script with a background grandchild that writes timestamps, so the files show whether the two
 * runs overlapped. Forged and corrupt records of a running command never make a delivery signal
 * a process that is not its own.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverRollback, type RollbackRequest } from '../../activities/gate/rollback.js';
import { repoRoot } from '../../stack/paths.js';
import { failureOf, within } from '../helpers/async.js';
import { alive } from '../helpers/processes.js';

const linux = process.platform === 'linux';
const hasSetpriv = linux && spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true']).status === 0;

const base: RollbackRequest = {
  gateId: 'gate/chatbot/v2',
  deployment: 'chatbot',
  fromVersion: 'v2',
  toVersion: 'v1',
  reason: 'quality dropped 12 points',
  idempotencyKey: 'unset',
};

/**
 * The rollback command. Attempt 1 works until it is stopped, with a grandchild in the background
 * that ignores SIGTERM; both write a timestamp every 50 ms. A later attempt writes when it started.
 */
const COMMAND = `#!/bin/sh
PATH=/usr/bin:/bin
export PATH
d="$1"
a="$OPTIINFRA_ATTEMPT"
echo $$ > "$d/leader-$a.pid"
if [ "$a" = 1 ]; then
  ( trap '' TERM; while :; do date +%s%N >> "$d/grandchild.beats"; sleep 0.05; done ) &
  echo $! > "$d/grandchild.pid"
  while :; do date +%s%N >> "$d/leader.beats"; sleep 0.05; done
fi
date +%s%N > "$d/retry.start"
echo "rollback attempt $a done"
`;

/** The worker: delivers one rollback and waits (it is killed meanwhile). */
const WORKER = `
const [modUrl, json] = process.argv.slice(2);
const { deliverRollback } = await import(modUrl);
const { cfg, req, opts } = JSON.parse(json);
await deliverRollback(cfg, req, opts).then(
  (r) => console.log(JSON.stringify(r)),
  (e) => console.log('failed: ' + e.message),
);
`;

/** Start time (clock ticks after boot) and process group, from /proc/<pid>/stat. */
function procStat(pid: number): { start: string; pgrp: number } {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { start: f[19] as string, pgrp: Number(f[2]) };
}

/** Live processes of a process group. */
function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((p) => {
      try {
        return procStat(p).pgrp === pgid && alive(p);
      } catch {
        return false;
      }
    });
}

/** Polls `ok` every 50 ms for up to `ms`; true once it holds. */
async function until(ok: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await ok()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lines = async (file: string) => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
/** Where a delivery records its running command (the name the module comment gives). */
const recordPath = (key: string) => path.join(stateDir, `${createHash('sha256').update(key).digest('hex')}.json`);

let dir: string;
let stateDir: string;
let commandFile: string;
let workerFile: string;
const cleanup: number[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'optiinfra-rollback-orphans-'));
  stateDir = path.join(dir, 'state');
  commandFile = path.join(dir, 'rollback.sh');
  await writeFile(commandFile, COMMAND);
  await chmod(commandFile, 0o755);
  workerFile = path.join(dir, 'worker.mjs');
  await writeFile(workerFile, WORKER);
});

afterAll(async () => {
  for (const p of cleanup) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await rm(dir, { recursive: true, force: true });
});

/**
 * A worker process delivering attempt 1 of `key`, SIGKILLed once the command and its grandchild
 * both work. Returns the pids of the command and of the grandchild.
 */
async function workerDiesMidCommand(key: string, markers: string, env: NodeJS.ProcessEnv) {
  const job = JSON.stringify({
    cfg: { type: 'command', argv: [commandFile, markers] },
    req: { ...base, idempotencyKey: key },
    opts: { stateDir, timeoutMs: 120_000 },
  });
  const worker: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', workerFile, pathToFileURL(path.join(repoRoot(), 'activities/gate/rollback.ts')).href, job],
    { cwd: repoRoot(), env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  worker.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  worker.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise((r) => worker.once('exit', r));
  const working = await until(
    async () =>
      (await lines(path.join(markers, 'grandchild.beats'))).length >= 2 &&
      (await lines(path.join(markers, 'leader.beats'))).length >= 2 &&
      existsSync(path.join(markers, 'grandchild.pid')),
    30_000,
  );
  if (!working) worker.kill('SIGKILL');
  expect(working, `the worker's command did not start: ${out}`).toBe(true);
  const leader = Number((await lines(path.join(markers, 'leader-1.pid')))[0]);
  const grandchild = Number((await lines(path.join(markers, 'grandchild.pid')))[0]);
  cleanup.push(leader, grandchild);
  expect(alive(leader) && alive(grandchild)).toBe(true);
  worker.kill('SIGKILL');
  await within(exited, 10_000);
  return { leader, grandchild };
}

/** The retry, in this process: attempt 2 of `key`; asserts the earlier run was over before it started. */
async function retryEndsEarlierRun(key: string, markers: string, earlier: { leader: number; grandchild: number }) {
  const started = Date.now();
  const r = await within(
    deliverRollback(
      { type: 'command', argv: [commandFile, markers] },
      { ...base, idempotencyKey: key, attempt: 2 },
      {
        stateDir,
        timeoutMs: 20_000,
      },
    ),
    25_000,
  );
  expect(r.status).toBe('delivered');
  expect(r.detail).toContain('rollback attempt 2 done');
  expect(r.detail).toContain(`ended the earlier attempt's command still running (pid ${earlier.leader})`);
  // The earlier run's last heartbeat was written before the retry started: no overlap.
  const retryStart = BigInt((await lines(path.join(markers, 'retry.start')))[0] ?? '0');
  const beats = [...(await lines(path.join(markers, 'grandchild.beats'))), ...(await lines(path.join(markers, 'leader.beats')))].map(
    BigInt,
  );
  expect(retryStart > 0n).toBe(true);
  expect(beats.filter((b) => b >= retryStart)).toEqual([]);
  expect(alive(earlier.leader)).toBe(false);
  expect(alive(earlier.grandchild)).toBe(false);
  expect(groupMembers(earlier.leader)).toEqual([]);
  // Within the SIGTERM grace (the grandchild ignores it) plus the run itself, on a loaded machine.
  expect(Date.now() - started).toBeLessThan(20_000);
  // The record goes when the attempt has ended.
  expect(await until(() => !existsSync(recordPath(key)), 5000)).toBe(true);
}

describe.skipIf(!linux)('a worker killed while its rollback command runs', () => {
  // Failed before: the command was still running 10 s after its worker was SIGKILLed.
  it.skipIf(!hasSetpriv)(
    'the command dies with the worker (parent-death signal); only the grandchild survives it',
    async () => {
      const markers = await mkdtemp(path.join(dir, 'pdeathsig-'));
      const key = `gate/chatbot/v2/orphans-${Date.now()}-a`;
      const earlier = await workerDiesMidCommand(key, markers, process.env);
      expect(await until(() => !alive(earlier.leader), 10_000)).toBe(true);
      // The parent-death signal reaches the direct child only: the grandchild works on.
      const beatsThen = (await lines(path.join(markers, 'grandchild.beats'))).length;
      expect(await until(async () => (await lines(path.join(markers, 'grandchild.beats'))).length > beatsThen, 10_000)).toBe(true);
      expect(alive(earlier.grandchild)).toBe(true);
      // Failed before: the retry ran next to the grandchild still writing, and its detail did not say so.
      await retryEndsEarlierRun(key, markers, earlier);
    },
    90_000,
  );

  // Failed before: the retry ran at once while the earlier command and its grandchild went on
  // writing heartbeats (10 and 9 of them during a 0.5 s retry), and its detail said nothing of them.
  it('without setpriv on the worker PATH: the retry ends the whole earlier run, command and grandchild, before it starts', async () => {
    const markers = await mkdtemp(path.join(dir, 'no-setpriv-'));
    const key = `gate/chatbot/v2/orphans-${Date.now()}-b`;
    const earlier = await workerDiesMidCommand(key, markers, { ...process.env, PATH: path.join(dir, 'empty-bin') });
    // Nothing ended the command with its worker.
    expect(alive(earlier.leader)).toBe(true);
    await retryEndsEarlierRun(key, markers, earlier);
  }, 90_000);
});

describe.skipIf(!linux)('a record of a running command that is not ours', () => {
  const quick = { type: 'command' as const, argv: ['/bin/sh', '-c', 'echo rolled back'] };
  const deliver = (key: string) => within(deliverRollback(quick, { ...base, idempotencyKey: key, attempt: 2 }, { stateDir }), 15_000);
  const forge = async (key: string, rec: unknown) => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await writeFile(recordPath(key), typeof rec === 'string' ? rec : JSON.stringify(rec), { mode: 0o600 });
  };

  // Failed before: the stale record stayed (nothing read or removed it); no process was signalled.
  it('naming a pid that has ended: the rollback runs at once and says nothing of an earlier run', async () => {
    const gone = spawn('/bin/sh', ['-c', 'exit 0']);
    await new Promise((r) => gone.once('exit', r));
    const key = `gate/chatbot/v2/forged-${Date.now()}-dead`;
    await forge(key, { v: 1, key, pid: gone.pid, pgid: gone.pid, start: '1', boot: bootId() });
    const r = await deliver(key);
    expect(r.detail).toContain('rolled back');
    expect(r.detail).not.toContain('ended the earlier attempt');
    expect(await until(() => !existsSync(recordPath(key)), 5000)).toBe(true);
  });

  // Pins: a record was never read before, so no process was signalled.
  it('naming a live unrelated process, with a wrong or even its true start time: never signalled', async () => {
    const sleeper = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    const pid = sleeper.pid as number;
    cleanup.push(pid);
    await until(() => alive(pid), 5000);
    const { start } = procStat(pid);
    for (const [i, rec] of [
      { pid, pgid: pid, start: String(BigInt(start) + 1n) },
      { pid, pgid: pid, start },
    ].entries()) {
      const key = `gate/chatbot/v2/forged-${Date.now()}-sleep-${i}`;
      await forge(key, { v: 1, key, boot: bootId(), ...rec });
      const r = await deliver(key);
      expect(r.detail).toContain('rolled back');
      expect(r.detail).not.toContain('ended the earlier attempt');
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(alive(pid)).toBe(true);
    sleeper.kill('SIGKILL');
  });

  // Pins: a record was never read before, so no process was signalled.
  it('corrupt: garbage, pid 0 or 1, this very process, another key, another boot: nothing signalled', async () => {
    const me = procStat(process.pid);
    const records = (key: string): unknown[] => [
      'not json {',
      '',
      { v: 1, key, pid: 0, pgid: 0, start: '0', boot: bootId() },
      { v: 1, key, pid: 1, pgid: 1, start: procStat(1).start, boot: bootId() },
      { v: 1, key, pid: process.pid, pgid: me.pgrp, start: me.start, boot: bootId() },
      { v: 1, key, pid: process.pid, pgid: process.pid, start: me.start, boot: bootId() },
      { v: 1, key: `${key}-other`, pid: process.pid, pgid: me.pgrp, start: me.start, boot: bootId() },
      { v: 1, key, pid: process.pid, pgid: me.pgrp, start: me.start, boot: 'another-boot' },
      { v: 1, key, pid: '12abc', pgid: null, start: {}, boot: bootId() },
    ];
    for (let i = 0; i < records(base.idempotencyKey).length; i++) {
      const key = `gate/chatbot/v2/forged-${Date.now()}-corrupt-${i}`;
      await forge(key, records(key)[i]);
      const r = await deliver(key);
      expect(r.detail).toContain('rolled back');
      expect(r.detail).not.toContain('ended the earlier attempt');
    }
    expect(alive(process.pid)).toBe(true);
  });
});

describe.skipIf(!linux)('a rollback command started for a parent-death signal', () => {
  // Pins: a script whose interpreter is missing is refused for good as not found, as when it was
  // spawned directly (setpriv's own exit 127 is not taken for the command's).
  it('a script whose interpreter is missing: refused for good, ENOENT', async () => {
    const script = path.join(dir, 'no-interpreter.sh');
    await writeFile(script, '#!/nonexistent/interpreter\necho hi\n');
    await chmod(script, 0o755);
    const f = await failureOf(
      deliverRollback({ type: 'command', argv: [script] }, { ...base, idempotencyKey: 'gate/chatbot/v2/no-interpreter' }, { stateDir }),
    );
    expect(f.type).toBe('DeployerRejected');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('ENOENT');
  });

  // Pins: a command's own exit 127 stays a retryable failure with its output.
  it("a command's own exit 127 is its own: retryable, with its output", async () => {
    const f = await failureOf(
      deliverRollback(
        { type: 'command', argv: ['/bin/sh', '-c', 'echo "kubectl: command not found" >&2; exit 127'] },
        { ...base, idempotencyKey: 'gate/chatbot/v2/exit-127' },
        { stateDir },
      ),
    );
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.message).toContain('exited with 127');
    expect(f.message).toContain('kubectl: command not found');
  });
});
