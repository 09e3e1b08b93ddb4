/**
 * `optiinfra gate` as a CI pipeline runs it: a real process, exit codes, reports, attaching on
 * re-runs, and bad input that starts nothing. Against the dev server with a running worker.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { repoRoot } from '../../stack/paths.js';
import { cliEnv, startTestStack, uniqueId, type TestStack, serveAndCollect } from '../helpers/env.js';

const run = promisify(execFile);

describe('optiinfra gate from a CI pipeline', () => {
  let stack: TestStack;
  let sim: Simulator;
  const deployment = uniqueId('ci');
  const dir = mkdtempSync(join(tmpdir(), 'optiinfra-ci-'));
  const summary = join(dir, 'step-summary.md');

  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = cliEnv(stack.config, {
      TEMPORAL_UI_URL: 'http://127.0.0.1:8233',
      OPTIINFRA_HOME: join(dir, 'home'),
      GITHUB_STEP_SUMMARY: summary,
    });
    try {
      const r = await run(process.execPath, ['--import', 'tsx', join(repoRoot(), 'client', 'cli', 'index.ts'), ...args], {
        cwd: repoRoot(),
        env,
      });
      return { code: 0, ...r };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr };
    }
  }

  const serve = (version: string, degradedShare: number, count: number) =>
    serveAndCollect(stack, sim, deployment, version, degradedShare, count);

  const gatesStarted = async () => {
    const ids: string[] = [];
    for await (const w of stack.client.workflow.list({ query: `WorkflowType = 'deployGate' AND OptiDeployment = '${deployment}'` }))
      ids.push(w.workflowId);
    return ids;
  };

  beforeAll(async () => {
    stack = await startTestStack();
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.05, seed: 11 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    await serve('v1', 0.05, 400);
    await serve('v2', 0.5, 200);
    await serve('v3', 0, 400);
  });
  afterAll(async () => {
    await sim?.close();
    await stack?.stop();
  });

  it('exits 1 on the degraded candidate, writes the report and the job summary, and a re-run attaches', async () => {
    const report = join(dir, 'gate.md');
    const args = [
      'gate',
      '--deployment',
      deployment,
      '--candidate',
      'v2',
      '--baseline',
      'v1',
      '--wait',
      '--ci-run',
      'run-1',
      '--report',
      report,
    ];
    const first = await cli(args);
    expect(first.code, first.stderr).toBe(1);
    expect(first.stderr).toMatch(new RegExp(`started gate/${deployment}/v2/run-1`));
    expect(first.stderr).toMatch(/http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/gate%2F/);
    expect(first.stdout).toMatch(/decision: REJECT/);
    expect(first.stdout).toMatch(/rollback: dry-run/);
    expect(readFileSync(report, 'utf8')).toMatch(/## Deploy gate: REJECT/);
    expect(readFileSync(summary, 'utf8')).toMatch(/## Deploy gate: REJECT/);

    const again = await cli(args);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(new RegExp(`attached to gate/${deployment}/v2/run-1`));
    const rows = await stack.stores.db.query('SELECT count(*)::int AS n FROM gate_decisions WHERE gate_id = $1', [
      `gate/${deployment}/v2/run-1`,
    ]);
    expect(rows.rows[0].n).toBe(1);

    // The same CI run asking for other parameters does not silently get the old result.
    const other = await cli([...args.filter((a) => a !== '--wait'), '--quality-drop', '2']);
    expect(other.code).toBe(3);
    expect(other.stderr).toMatch(
      new RegExp(`gate 'gate/${deployment}/v2/run-1' already exists for this CI run with other parameters \\(baseline v1, quality-drop 5,`),
    );
    expect(other.stderr).toMatch(/this run asks for \(baseline v1, quality-drop 2,/);

    const status = await cli(['gate', 'status', '--deployment', deployment, '--candidate', 'v2', '--ci-run', 'run-1', '--json']);
    expect(status.code).toBe(1);
    expect(JSON.parse(status.stdout)).toMatchObject({ decision: 'REJECT', exitCode: 1 });
  });

  it('exits 0 on a benign candidate', async () => {
    const r = await cli([
      'gate',
      '--deployment',
      deployment,
      '--candidate',
      'v3',
      '--baseline',
      'v1',
      '--wait',
      '--ci-run',
      'run-2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ decision: 'APPROVE', exitCode: 0 });
  });

  it.each([
    [['--candidate', 'v1', '--baseline', 'v1'], /candidate version must differ from the baseline version/],
    [['--candidate', 'v2', '--baseline', 'v1', '--quality-drop', '-5'], /--quality-drop must not be negative/],
    [['--candidate', 'v2;rm -rf /', '--baseline', 'v1'], /candidate version must be 1-128 characters/],
    [['--candidate', 'v2', '--baseline', 'v1', '--max-wait', 'soon'], /--max-wait <duration>.* must look like 30s, 15m, 2h or 1d/],
    [['--candidate', 'v2', '--baseline', 'v1', '--max-wait', '99999999999999999999d'], /--max-wait <duration>.* must look like/],
    [['--candidate', 'v2', '--baseline', 'v1', '--max-wait', '31d'], /--max-wait <duration>.* must be between 1s and 30d/],
    [['--candidate', 'v2', '--baseline', 'v1', '--rollback-webhook', 'javascript:alert(1)'], /webhook url must be an http/],
  ])('rejects %j with a clear error and starts nothing', async (extra, msg) => {
    const before = (await gatesStarted()).length;
    const r = await cli(['gate', '--deployment', deployment, ...extra, '--ci-run', 'bad']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(msg);
    expect((await gatesStarted()).length).toBe(before);
  });

  it('refuses an unknown deployment before starting anything', async () => {
    const r = await cli(['gate', '--deployment', 'no-such-deployment', '--candidate', 'v2', '--baseline', 'v1']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/deployment 'no-such-deployment' is not registered/);
    await expect(stack.client.workflow.getHandle('gate/no-such-deployment/v2').describe()).rejects.toThrow(/not found/i);
  });

  it("collect --once shows the progress and the retries of a failing source, then ends with the cycle's error", async () => {
    const dep = uniqueId('once');
    // Nothing listens on the discard port: every fetch fails and is retried.
    await upsertDeployment(stack.stores.db, { id: dep, source: { type: 'http', url: 'http://127.0.0.1:9/interactions' }, sample_rate: 1 });
    const env = cliEnv(stack.config, { OPTIINFRA_HOME: join(dir, 'home') });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot(), 'client', 'cli', 'index.ts'), 'collect', '--deployment', dep, '--once'],
      {
        cwd: repoRoot(),
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    for (let i = 0; i < 600 && !/fetchPage attempt [2-9]/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    const workflowId = /started (collect\/\S+)/.exec(err)?.[1];
    expect(workflowId, err).toBeDefined();
    expect(err).toMatch(/fetching page 1: 0 stored, 0 checks scored, 0 failed, 0 bad; fetchPage attempt \d+: \S.*/);
    // The cycle ends (here: terminated) and the command says how, with exit code 3.
    await stack.client.workflow.getHandle(workflowId!).terminate('stopped by the test');
    expect(await exited).toBe(3);
    expect(err).toContain(`cycle ${workflowId} failed: `);
    expect(err).toMatch(/terminated|stopped by the test/i);
  }, 120_000);
});
