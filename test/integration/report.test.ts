/**
 * `optiinfra report`: collection cycles on the simulator with the offline judge, a gate that
 * takes several looks (time-skipping server) and rejects, a benign candidate approved, a review
 * finding with dollar figures; the CLI writes the page, and Debian's chromium (headless, through
 * playwright-core) opens it offline: every chart drew marks, no console error, no request but the
 * file itself. The screenshot is kept under .stack-test/report/.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAgentRun } from '../../activities/storage/postgres/agents.js';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { renderGateReport } from '../../domain/gate/report.js';
import type { GateProgress, GateResult } from '../../domain/gate/types.js';
import { ensureChromium } from '../../stack/binaries.js';
import { MissingProgramError } from '../../stack/errors.js';
import { repoRoot } from '../../stack/paths.js';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { cliEnv, startTimeSkippingStack, uniqueId, type TestStack, serveAndCollect } from '../helpers/env.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Chromium's launch arguments: nothing in the background that could reach a network. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface ChartCheck {
  kind: string;
  empty: boolean;
  /** Marks (paths, circles, rects, lines) inside the chart's data group with a non-empty box. */
  drawn: number;
  width: number;
  height: number;
  rendered: number;
}

describe('optiinfra report: the page in a headless browser', () => {
  let stack: TestStack & { env: { sleep(d: string | number): Promise<void> } };
  let sim: Simulator;
  const deployment = uniqueId('report');
  const out = join(repoRoot(), '.stack-test', 'report');
  const home = mkdtempSync(join(repoRoot(), '.stack-test', 'report-home-'));
  let rejected: GateResult;

  const serve = (version: string, degradedShare: number, count: number) =>
    serveAndCollect(stack, sim, deployment, version, degradedShare, count);

  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const r = await run(process.execPath, ['--import', 'tsx', join(repoRoot(), 'client', 'cli', 'index.ts'), ...args], {
        cwd: repoRoot(),
        env: cliEnv(stack.config, { OPTIINFRA_HOME: home }),
      });
      return { code: 0, ...r };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr };
    }
  }

  beforeAll(async () => {
    mkdirSync(out, { recursive: true });
    stack = await startTimeSkippingStack();
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.05, seed: 5 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
    // The good model over a few seconds of interaction time: several points per trend.
    for (let i = 0; i < 4; i++) {
      if (i) await sleep(1100);
      await serve('v1', 0.05, 100);
    }
  }, 300_000);

  afterAll(async () => {
    await sim?.close();
    await stack?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('a gate keeps every look: its bounds narrow until it rejects', async () => {
    await sleep(1100);
    await serve('v2-q4', 0.35, 20);
    const h = await stack.client.workflow.start('deployGate', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `gate/${deployment}/v2-q4`,
      args: [{ deployment, baselineVersion: 'v1', candidateVersion: 'v2-q4', checkEvery: '15m', maxWait: '12h' }],
    });
    // Each round: wait for the gate's next look, serve more candidate traffic, let 15 minutes pass.
    let seen = 0;
    for (let round = 0; round < 20; round++) {
      let p: GateProgress | undefined;
      const decided = (x?: GateProgress) => !!x && (x.decision !== undefined || !['baseline', 'waiting'].includes(x.phase));
      for (let i = 0; i < 600; i++) {
        p = await h.query<GateProgress>('progress').catch(() => undefined);
        if (p && (p.looks > seen || decided(p))) break;
        await sleep(100);
      }
      if (!p || decided(p) || p.looks <= seen) break;
      seen = p.looks;
      await sleep(1100);
      await serve('v2-q4', 0.35, 30);
      await stack.env.sleep('15m');
    }
    rejected = (await h.result()) as GateResult;
    expect(rejected.decision).toBe('REJECT');
    const ev = rejected.evidence!;
    expect(ev.looks).toBeGreaterThanOrEqual(3);
    expect(ev.history).toHaveLength(ev.looks);
    expect(ev.history!.map((l) => l.look)).toEqual(Array.from({ length: ev.looks }, (_, i) => i + 1));
    expect(ev.history![ev.looks - 1]!.outcome).toBe('REJECT');
    const width = ev.history!.map((l) => l.metrics.find((m) => m.metric === 'quality')!).map((m) => m.upper - m.lower);
    expect(width[width.length - 1]!).toBeLessThan(width[0]!);
    // The recorded evidence keeps them.
    const row = await stack.stores.db.query('SELECT evidence FROM gate_decisions WHERE gate_id = $1', [rejected.gateId]);
    expect(row.rows[0].evidence.history).toHaveLength(ev.looks);

    // The CI report charts them.
    const md = renderGateReport(rejected);
    const q = md.split('```mermaid')[1]!;
    expect(q).toContain('title "Quality drop (points), tolerance 5"');
    expect((/x-axis "look \(candidate samples\)" \[([^\]]*)\]/.exec(q)![1]!.match(/"/g) ?? []).length / 2).toBe(ev.looks);

    // A benign candidate, approved at its first look.
    await sleep(1100);
    await serve('v3', 0, 300);
    const approved = (await (
      await stack.client.workflow.start('deployGate', {
        taskQueue: stack.config.temporal.taskQueue,
        workflowId: `gate/${deployment}/v3`,
        args: [{ deployment, baselineVersion: 'v1', candidateVersion: 'v3', checkEvery: '15m', maxWait: '2h' }],
      })
    ).result()) as GateResult;
    expect(approved.decision).toBe('APPROVE');
  }, 300_000);

  it('writes a self-contained page that a headless chromium renders offline, every chart drawn', async (ctx) => {
    expect(rejected, 'needs the gate of the previous test').toBeDefined();
    // A review finding with dollar figures (the review itself is tested in review.test.ts).
    await recordAgentRun(stack.stores.db, {
      id: `report-test/${randomUUID()}`,
      agent: 'cost',
      status: 'ok',
      window: { from: new Date(Date.now() - 30 * 86_400_000).toISOString(), to: new Date().toISOString(), stepSeconds: 86_400 },
      dataPoints: 30,
      findings: [
        {
          kind: 'idle-resource',
          title: 'gpu-report-1 idle 95 % of the time',
          severity: 'high',
          subject: 'gpu-report-1',
          evidence: { idle_share_pct: 95 },
          recommendation: 'Stop it outside business hours',
          monthlySavingUsd: 52,
          annualSavingUsd: 624,
          confidence: 0.9,
        },
      ],
      summary: 'one idle instance',
    });

    const file = join(out, 'report.html');
    const r = await cli(['report', '--deployment', deployment, '--html', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`report written to ${file}`);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain(`OptiInfra report: ${deployment}`);
    expect(html).not.toMatch(/<script|\b(src|href)=/i);

    // Without --html: under the stack home.
    const d = await cli(['report', '--deployment', deployment]);
    expect(d.code, d.stderr).toBe(0);
    const written = /^report written to (.+)$/.exec(d.stdout.trim())?.[1];
    expect(written?.startsWith(join(home, 'reports'))).toBe(true);
    expect(existsSync(written!)).toBe(true);
    // An unknown deployment is a usage error.
    const bad = await cli(['report', '--deployment', 'no-such-deployment']);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/deployment 'no-such-deployment' is not registered/);

    let executablePath: string;
    try {
      executablePath = await ensureChromium();
    } catch (e) {
      if (!(e instanceof MissingProgramError)) throw e;
      console.log(`[report] browser check skipped: ${e.message}`);
      return ctx.skip();
    }
    const userDataDir = mkdtempSync(join(out, 'chromium-profile-'));
    const browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1300, height: 1000 },
    });
    const errors: string[] = [];
    const requests: string[] = [];
    browser.on('request', (q) => requests.push(q.url()));
    try {
      const page = await browser.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      const url = pathToFileURL(file).href;
      await page.goto(url, { waitUntil: 'load' });
      const charts = await page.evaluate((): ChartCheck[] =>
        [...document.querySelectorAll('figure.chart')].map((f) => {
          const svg = f.querySelector('svg');
          const g = svg?.querySelector<SVGGraphicsElement>('g.data');
          const box = g?.getBBox();
          const drawn = g
            ? [...g.querySelectorAll<SVGGraphicsElement>('path, circle, rect, line')].filter((el) => {
                const b = el.getBBox();
                return b.width > 0 || b.height > 0;
              }).length
            : 0;
          return {
            kind: (f as HTMLElement).dataset.chart ?? '',
            empty: f.classList.contains('empty'),
            drawn,
            width: box?.width ?? 0,
            height: box?.height ?? 0,
            rendered: svg?.getBoundingClientRect().width ?? 0,
          };
        }),
      );
      const shot = join(out, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`[report] page ${file}, screenshot ${shot}`);

      const kinds = charts.map((x) => x.kind);
      const expected = [
        'trend:quality',
        'trend:hallucination_rate',
        'trend:toxicity_rate',
        ...['v3', 'v2-q4'].flatMap((v) =>
          ['quality', 'hallucination_rate', 'toxicity_rate'].map((m) => `gate:gate/${deployment}/${v}:${m}`),
        ),
        'coverage',
        'savings',
      ];
      expect(kinds).toEqual(expected);
      for (const x of charts) {
        expect(x.empty, `${x.kind} is empty`).toBe(false);
        expect(x.drawn, `${x.kind} drew nothing`).toBeGreaterThan(0);
        expect(x.width * x.height, `${x.kind} has no area`).toBeGreaterThan(0);
        expect(x.rendered, `${x.kind} is not laid out`).toBeGreaterThan(100);
      }
      // The rejected gate's chart shows each look: a bar and a point per look.
      const looks = rejected.evidence!.looks;
      const perLook = await page.evaluate(
        (id) => document.querySelector(`figure[data-chart="gate:${id}:quality"] g.data`)?.querySelectorAll('circle').length ?? 0,
        rejected.gateId,
      );
      expect(perLook).toBe(looks);
      // Trends: a line per version.
      const lines = await page.evaluate(() => document.querySelectorAll('figure[data-chart="trend:quality"] path.series').length);
      expect(lines).toBe(3);

      expect(errors).toEqual([]);
      expect(new Set(requests)).toEqual(new Set([url]));
      expect(statSync(shot).size).toBeGreaterThan(20_000);
    } finally {
      await browser.close();
      rmSync(userDataDir, { recursive: true, force: true });
    }
  }, 300_000);
});
