/**
 * `optiinfra gate --wait` as CI runners really run it: a real process with pipes (no TTY), the
 * Temporal server restarted under it, the job cancelled (SIGTERM, SIGINT twice), stdout closed
 * early, `--json`, its own deadline against the gate's, the runner's clock jumping, two pipelines
 * at once. The exit code must tell the decision's truth, an interruption must say what happened
 * and what to do, and a re-run must attach to the same gate.
 *
 * The Temporal server is this file's own (it is killed and restarted); ClickHouse and PostgreSQL
 * are the global setup's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GateResult } from '../../domain/gate/types.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { repoRoot } from '../../stack/paths.js';
import { freePort, portInUse } from '../../stack/ports.js';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { stackDown } from '../../stack/stack.js';
import { startTemporal } from '../../stack/temporal.js';
import { cliEnv, serveAndCollect, startTestStack, testConfig, testEnv, uniqueId, type TestStack } from '../helpers/env.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const ESC = /[\u001b\r]/;

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

describe('optiinfra gate --wait under a hostile CI runner', () => {
  const home = join(testEnv().home, `hostile-cli-${uniqueId('h')}`);
  const dir = mkdtempSync(join(tmpdir(), 'optiinfra-hostile-cli-'));
  const deployment = uniqueId('hcli');
  let temporalOpts: Parameters<typeof startTemporal>[0];
  let temporalPid = 0;
  let stack: TestStack;
  let sim: Simulator;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    process.env.TEMPORAL_CLI = testEnv().temporalCli;
    temporalOpts = { home, port: await freePort(), uiPort: await freePort(), dbFile: join(home, 'temporal.db') };
    const t = await startTemporal(temporalOpts);
    temporalPid = t.pid;
    stack = await startTestStack(testConfig({ TEMPORAL_ADDRESS: t.address }));
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.05, seed: 23 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    await serve('v1', 0.05, 400);
    await serve('v2', 0.5, 200); // REJECT
    await serve('v3', 0, 400); // APPROVE
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await sim?.close();
    await Promise.race([stack?.stop().catch(() => undefined), sleep(30_000)]);
    await stackDown({ home, log: () => undefined });
    rmSync(home, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const serve = (version: string, degradedShare: number, count: number) =>
    serveAndCollect(stack, sim, deployment, version, degradedShare, count);

  function cli(args: string[], o: { env?: Record<string, string>; preload?: string[] } = {}): Proc {
    const env = cliEnv(stack.config, { OPTIINFRA_HOME: join(dir, 'home'), ...o.env });
    const preload = (o.preload ?? []).flatMap((p) => ['--import', p]);
    const child = spawn(process.execPath, [...preload, '--import', 'tsx', join(repoRoot(), 'client', 'cli', 'index.ts'), ...args], {
      cwd: repoRoot(),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const t0 = Date.now();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((r) =>
      child.once('close', (code, signal) => r({ code, signal, ms: Date.now() - t0 })),
    );
    return { child, out: () => out, err: () => err, exited };
  }

  const gateArgs = (candidate: string, ciRun: string, ...extra: string[]) => [
    'gate',
    '--deployment',
    deployment,
    '--candidate',
    candidate,
    '--baseline',
    'v1',
    '--check-every',
    '2s',
    '--ci-run',
    ciRun,
    ...extra,
  ];
  const gateId = (candidate: string, ciRun: string) => `gate/${deployment}/${candidate}/${ciRun}`;

  async function until(p: Proc, re: RegExp, ms = 120_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(p.err())) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`exited before ${re}: ${p.err()}`);
      if (Date.now() > deadline) throw new Error(`no ${re} after ${ms} ms: ${p.err()}`);
      await sleep(100);
    }
  }

  /** What a CI runner does on cancel: the signal, then SIGKILL after a grace period. */
  async function cancel(p: Proc, signal: NodeJS.Signals, graceMs = 10_000) {
    p.child.kill(signal);
    const killed = sleep(graceMs).then(() => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    });
    const r = await p.exited;
    void killed;
    return r;
  }

  const executions = async (id: string) => {
    let n = 0;
    for await (const _ of stack.client.workflow.list({ query: `WorkflowId = '${id}'` })) n++;
    return n;
  };
  const decisionRows = async (id: string) =>
    (await stack.stores.db.query('SELECT count(*)::int AS n FROM gate_decisions WHERE gate_id = $1', [id])).rows[0].n as number;

  // Failed before: the client's own gRPC retries (about 20 s) ran out, `result()` threw and the
  // CLI exited 3 ("14 UNAVAILABLE") while the gate kept running and later decided.
  it('waits out a 30 s Temporal restart and exits with the decision', async () => {
    const p = cli(gateArgs('v-outage', 'outage-1', '--wait'));
    await until(p, /\[waiting\] look \d+/);
    const ports = [temporalOpts.port, temporalOpts.uiPort];
    expect(temporalPid).toBeGreaterThan(0); // this file's own server
    process.kill(-temporalPid, 'SIGKILL');
    let alive: boolean;
    try {
      for (let i = 0; i < 200 && (await Promise.all(ports.map((x) => portInUse(x)))).some(Boolean); i++) await sleep(100);
      await sleep(30_000);
      alive = p.child.exitCode === null;
    } finally {
      // Whatever happened, the server comes back: the other tests need it.
      temporalPid = (await startTemporal(temporalOpts)).pid;
    }
    expect(alive, p.err()).toBe(true);
    await until(p, /reconnected to Temporal/, 90_000);
    await serve('v-outage', 0.5, 200);
    const r = await p.exited;
    expect(r.code, p.err()).toBe(1);
    expect(p.out()).toMatch(/decision: REJECT/);
    expect(p.err()).toMatch(/lost contact with Temporal .*the gate keeps running on the server/);
    expect(((await stack.client.workflow.getHandle(gateId('v-outage', 'outage-1')).result()) as GateResult).decision).toBe('REJECT');
  }, 300_000);

  // Failed before: SIGTERM killed the process silently (no line, killed by the signal).
  it('SIGTERM while waiting: exits at once saying the gate keeps running; the re-run attaches and gets the decision', async () => {
    const args = gateArgs('v-term', 'term-1', '--wait');
    const p = cli(args);
    await until(p, /\[waiting\] look \d+/);
    const t0 = Date.now();
    const r = await cancel(p, 'SIGTERM');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r).toMatchObject({ code: 143, signal: null });
    const id = gateId('v-term', 'term-1');
    expect(p.err()).toContain(`interrupted by SIGTERM while waiting for ${id}: the gate keeps running`);
    expect(p.err()).toContain(`optiinfra gate status --deployment ${deployment} --candidate v-term --ci-run term-1`);
    expect(p.out()).toBe('');
    expect((await stack.client.workflow.getHandle(id).describe()).status.name).toBe('RUNNING');

    const again = cli(args);
    await until(again, new RegExp(`attached to ${id}`));
    await serve('v-term', 0.5, 200);
    const r2 = await again.exited;
    expect(r2.code, again.err()).toBe(1);
    expect(((await stack.client.workflow.getHandle(id).result()) as GateResult).decision).toBe('REJECT');
    expect(await executions(id)).toBe(1);
    expect(await decisionRows(id)).toBe(1);
  }, 300_000);

  // Failed before: the first SIGINT killed the process (no line, no JSON document on stdout).
  it('SIGINT twice with --json: one JSON document saying it was interrupted, the gate keeps running', async () => {
    const p = cli(gateArgs('v-int', 'int-1', '--wait', '--json'));
    await until(p, /\[waiting\] look \d+/);
    p.child.kill('SIGINT');
    await sleep(50);
    p.child.kill('SIGINT');
    const r = await cancel(p, 'SIGINT');
    expect(r).toMatchObject({ code: 130, signal: null });
    const doc = JSON.parse(p.out());
    expect(doc).toMatchObject({ workflowId: gateId('v-int', 'int-1'), status: 'RUNNING', interrupted: 'SIGINT', exitCode: 130 });
    expect(p.err().match(/the gate keeps running/g)?.length).toBe(1);
    const h = stack.client.workflow.getHandle(gateId('v-int', 'int-1'));
    expect((await h.describe()).status.name).toBe('RUNNING');
    await h.terminate('test done');
  }, 180_000);

  // Failed before: stdout was empty on the timeout (no JSON document), and the hint lacked --ci-run
  // (from outside the CI run it named another gate).
  it('--timeout shorter than --max-wait with --json: exit 2, one JSON document, a hint naming this gate', async () => {
    const p = cli(gateArgs('v-short', 'short-1', '--wait', '--timeout', '4s', '--json'));
    const r = await p.exited;
    expect(r.code, p.err()).toBe(2);
    expect(JSON.parse(p.out())).toMatchObject({ workflowId: gateId('v-short', 'short-1'), status: 'RUNNING', decision: null, exitCode: 2 });
    expect(p.err()).toContain(`optiinfra gate status --deployment ${deployment} --candidate v-short --ci-run short-1`);
    await stack.client.workflow.getHandle(gateId('v-short', 'short-1')).terminate('test done');
  }, 180_000);

  // Held before: a CLI deadline longer than the gate's own ends with the gate's INCONCLUSIVE, exit 2.
  it('--timeout longer than --max-wait: the gate decides INCONCLUSIVE and the CLI exits 2 with it', async () => {
    const p = cli(gateArgs('v-long', 'long-1', '--wait', '--timeout', '10m', '--max-wait', '4s', '--json'));
    const r = await p.exited;
    expect(r.code, p.err()).toBe(2);
    expect(JSON.parse(p.out())).toMatchObject({ decision: 'INCONCLUSIVE', effectiveDecision: 'REJECT', exitCode: 2 });
  }, 180_000);

  // Failed before: the wait's deadline was read from the wall clock, so an NTP step of the
  // runner's clock (3 h forward here) ended a 15 s --timeout after 3 s.
  it("the runner's clock jumping forward does not end the wait early", async () => {
    const preload = join(dir, 'clock-jump.mjs');
    writeFileSync(
      preload,
      'const real = Date.now; const t0 = real();\nDate.now = () => { const t = real(); return t - t0 > 8000 ? t + 3 * 3600e3 : t; };\n',
    );
    const p = cli(gateArgs('v-clock', 'clock-1', '--wait', '--timeout', '15s'), { preload: [preload] });
    await until(p, /started gate/);
    const t0 = Date.now();
    const r = await p.exited;
    expect(r.code, p.err()).toBe(2);
    expect(Date.now() - t0).toBeGreaterThan(12_000);
    await stack.client.workflow.getHandle(gateId('v-clock', 'clock-1')).terminate('test done');
  }, 180_000);

  // Failed before: the gate started, decided APPROVE, and then the report's missing folder made
  // the CLI exit 3.
  it('a --report path that cannot be written is refused before anything starts', async () => {
    const p = cli(gateArgs('v3', 'report-bad', '--wait', '--report', join(dir, 'no-such-dir', 'gate.md')));
    const r = await p.exited;
    expect(r.code).toBe(3);
    expect(p.err()).toMatch(/--report .*no-such-dir.* cannot be written/);
    expect(await executions(gateId('v3', 'report-bad'))).toBe(0);
  }, 120_000);

  // Failed before: exit 3 for a gate that had APPROVEd (EISDIR writing the job summary).
  it('an unwritable $GITHUB_STEP_SUMMARY does not hide the decision: exit 0 on APPROVE, with a warning', async () => {
    const summaryDir = join(dir, 'summary-is-a-dir');
    mkdirSync(summaryDir, { recursive: true });
    const p = cli(gateArgs('v3', 'summary-bad', '--wait'), { env: { GITHUB_STEP_SUMMARY: summaryDir } });
    const r = await p.exited;
    expect(r.code, p.err()).toBe(0);
    expect(p.out()).toMatch(/decision: APPROVE/);
    expect(p.err()).toMatch(/warning: could not write the job summary .*the decision stands/);
  }, 180_000);

  // Failed before: with no worker on the job's task queue (a queue name that differs from the
  // workers'), the progress query timed out and the CLI said "lost contact with Temporal" and then
  // "cannot reach Temporal" (exit 3), while Temporal answered every other call; `gate status`
  // failed the same way.
  it('no worker on the task queue: says so, waits within --timeout (exit 2), never calls Temporal unreachable', async () => {
    const queue = uniqueId('no-worker-queue');
    const p = cli(gateArgs('v-noworker', 'noworker-1', '--wait', '--timeout', '35s'), { env: { TEMPORAL_TASK_QUEUE: queue } });
    const r = await p.exited;
    expect(r.code, p.err()).toBe(2);
    expect(p.err()).toContain(`warning: no worker is polling task queue '${queue}': the gate waits until one runs ('optiinfra worker')`);
    expect(p.err()).toMatch(/still undecided after 35s; the gate keeps running/);
    expect(p.err()).not.toMatch(/cannot reach|lost contact/);
    const s = cli(['gate', 'status', '--deployment', deployment, '--candidate', 'v-noworker', '--ci-run', 'noworker-1'], {
      env: { TEMPORAL_TASK_QUEUE: queue },
    });
    expect((await s.exited).code, s.err()).toBe(0);
    expect(s.out()).toContain(`${gateId('v-noworker', 'noworker-1')} is running (its progress is known once a worker runs)`);
    await stack.client.workflow.getHandle(gateId('v-noworker', 'noworker-1')).terminate('test done');
  }, 180_000);

  // Failed before: `--timeout` without `--wait` was ignored: the gate started and the CLI exited 0.
  it('--timeout without --wait is a usage error and starts nothing', async () => {
    const p = cli(gateArgs('v3', 'nowait-1', '--timeout', '30m'));
    const r = await p.exited;
    expect(r.code).toBe(3);
    expect(p.err()).toMatch(/--timeout needs --wait/);
    expect(await executions(gateId('v3', 'nowait-1'))).toBe(0);
  }, 120_000);

  // Held before: stdout closed by its reader (`| head -0`) does not change the exit code.
  it('stdout closed early: the exit code is still the decision', async () => {
    for (const extra of [[], ['--json']]) {
      const p = cli(gateArgs('v2', 'pipe-1', '--wait', ...extra));
      p.child.stdout!.destroy();
      const r = await p.exited;
      expect(r.code, p.err()).toBe(1);
      expect(p.err()).not.toMatch(/EPIPE|Error:/);
    }
  }, 180_000);

  // Held before: progress and results on pipes carry no escape sequences or carriage returns, and
  // --json writes exactly one document on stdout and everything else on stderr.
  it('no TTY: plain lines only; --json: exactly one document on stdout', async () => {
    const p = cli(gateArgs('v2', 'tty-1', '--wait'));
    expect((await p.exited).code).toBe(1);
    expect(ESC.test(p.out() + p.err())).toBe(false);
    expect(p.err()).toMatch(/\[waiting\]|started gate/);
    const j = cli(gateArgs('v3', 'json-1', '--wait', '--json'));
    expect((await j.exited).code).toBe(0);
    expect(JSON.parse(j.out())).toMatchObject({ decision: 'APPROVE', exitCode: 0 });
    expect(j.err()).toMatch(/started gate/);
    expect(ESC.test(j.out() + j.err())).toBe(false);
  }, 180_000);

  // Held before: two jobs of one CI run racing end up on one gate and both get its decision; two
  // CI runs get a gate each.
  it('two pipelines gating the same candidate at once', async () => {
    const [a, b] = [cli(gateArgs('v2', 'same-1', '--wait')), cli(gateArgs('v2', 'same-1', '--wait'))];
    const [ra, rb] = await Promise.all([a.exited, b.exited]);
    expect([ra.code, rb.code]).toEqual([1, 1]);
    expect(await executions(gateId('v2', 'same-1'))).toBe(1);
    expect(await decisionRows(gateId('v2', 'same-1'))).toBe(1);

    const [c, d] = [cli(gateArgs('v3', 'par-a', '--wait')), cli(gateArgs('v3', 'par-b', '--wait'))];
    const [rc, rd] = await Promise.all([c.exited, d.exited]);
    expect([rc.code, rd.code]).toEqual([0, 0]);
    expect(await executions(gateId('v3', 'par-a'))).toBe(1);
    expect(await executions(gateId('v3', 'par-b'))).toBe(1);
  }, 240_000);
});
