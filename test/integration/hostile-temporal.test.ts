/**
 * The Temporal-facing surface under hostile input: every registered workflow type started by
 * hand (as from the Web UI or `temporal workflow start`, past the CLI's checks), the gate's
 * `override` update and signal and its `progress` query with payloads built to break them, and
 * names that would reach Temporal's own limits through the CLI.
 *
 * Each workflow case must end promptly as a non-retryable `InvalidInput` failure naming the
 * field, with no failed workflow task in its history (a failed task is retried for ever).
 * Cases marked "pinned" held before this file; the others failed before their fix.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { GateProgress, GateResult } from '../../domain/gate/types.js';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { runCli } from '../helpers/cli.js';
import { deploymentWithBaseline, startTestStack, uniqueId, type TestStack } from '../helpers/env.js';

const settings = {
  judge: 'offline',
  promptVersions: { quality: 'p', hallucination: 'p', toxicity: 'p' },
  judgeTaskQueue: 'q',
  llmTimeoutSec: 30,
  llmMaxRetries: 2,
};
const gateBase = { deployment: 'shop-bot', baselineVersion: 'v1', candidateVersion: 'v2' };
const MB = 'x'.repeat(1_000_000);

/** [workflow type, its arguments, what the failure message must name, pinned (held before)] */
const CASES: Array<[string, unknown[], RegExp, boolean?]> = [
  ['collectionCycle', [null], /expected object/, true],
  ['collectionCycle', [[{ deployment: 'a' }]], /expected object, received array/, true],
  ['collectionCycle', [{}], /deployment/, true],
  ['collectionCycle', [{ deployment: MB }], /deployment must be 1-128 characters/, true],
  ['collectionCycle', [{ deployment: 'a', pageSize: -1 }], /pageSize/, true],
  ['collectionCycle', [{ deployment: 'a', budgetMinutes: 1e308 }], /budgetMinutes/, true],
  ['collectionCycle', [{ deployment: 'a', pageSiz: 5 }], /pageSiz/],
  ['collectionCycle', [{ deployment: 'a', carry: 'lots' }], /carry/, true],
  ['scoreBatch', [null], /expected object/],
  ['scoreBatch', [{ deployment: 'a', ids: 'a,b', checks: ['quality'], settings }], /ids/],
  ['scoreBatch', [{ deployment: 'a', ids: ['a'], checks: ['quality'], settings: { judge: 'offline' } }], /settings/],
  ['computeBaseline', [null], /expected object/, true],
  ['computeBaseline', [{ deployment: 'a', version: 'v1', lastN: 1e308 }], /lastN/, true],
  ['computeBaseline', [{ deployment: 'a', version: 'v1', windw: 5 }], /windw/],
  ['deployGate', ['shop-bot'], /expected object/, true],
  ['deployGate', [{ ...gateBase, alpha: Number.NaN }], /alpha/, true],
  ['deployGate', [{ ...gateBase, minSample: 50 }], /minSample/],
  ['deployGate', [{ ...gateBase, carry: { deadline: 'soon' } }], /carry/],
  ['deployGate', [{ ...gateBase, carry: { baseline: null, startedAt: 1 } }], /carry/],
  ['deployGate', [{ ...gateBase, requestedBy: 'ci\u0000\u001b[2J' }], /requestedBy/],
  ['abCompare', [{ deployment: 'a', versionA: 'v1', versionB: 'v2', minSamples: 1e308 }], /minSamples/],
  ['abCompare', [{ deployment: 'a', versionA: 'v1', versionB: 'v2', window: '1d' }], /window/],
  ['gateNotifications', [null], /expected object/],
  ['gateNotifications', [{ deployment: 'a' }], /gateId|events/],
  ['costAgent', [null], /expected object/],
  ['costAgent', [{ days: -5 }], /days/],
  ['performanceAgent', [{ days: 1e308 }], /days/],
  ['resourceAgent', [{ stepSeconds: 0 }], /stepSeconds/],
  ['applicationAgent', [{ question: MB }], /question/],
  ['applicationAgent', [[]], /expected object/],
  ['explainDecision', [null], /expected object/],
  ['explainDecision', [{ decision: 'MAYBE', reason: 'r', settings }], /decision/],
  ['explainDecision', [{ decision: 'REJECT', reason: 'r', settings, evidence: { look: 'bad' } }], /evidence/],
  ['optimizationReview', [null], /expected object/],
  ['optimizationReview', [{ agents: 'cost' }], /agents/],
  ['optimizationReview', [{ days: '7' }], /days/],
];

/** The workflow's outcome within `ms`, or 'still running' (with whether a workflow task failed). */
async function outcome(h: WorkflowHandle, ms = 15_000): Promise<{ error?: unknown; value?: unknown; taskFailed: boolean }> {
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
  const r = await Promise.race([
    h.result().then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    timer,
  ]);
  const history = await h.fetchHistory();
  const taskFailed = (history.events ?? []).some((e) => e.workflowTaskFailedEventAttributes);
  if (r === 'timeout') {
    await h.terminate('test: still running').catch(() => undefined);
    return { error: new Error(`still running after ${ms} ms (workflow task failed: ${taskFailed})`), taskFailed };
  }
  return { ...r, taskFailed };
}

describe('hostile Temporal surface', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack();
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const start = (type: string, args: unknown[], id = `hostile/${type}/${randomUUID()}`) =>
    stack.client.workflow.start(type, { taskQueue: stack.config.temporal.taskQueue, workflowId: id, args });

  describe('every workflow type started by hand with a malformed input fails at once as InvalidInput', () => {
    it.each(CASES.map(([type, args, msg, pinned], i) => [`${i}: ${type} ${JSON.stringify(args).slice(0, 80)}`, type, args, msg, pinned]))(
      '%s',
      async (_name, type, args, msg) => {
        const h = await start(type as string, args as unknown[]);
        const r = await outcome(h);
        expect(r.error, String(r.error)).toBeInstanceOf(WorkflowFailedError);
        const cause = (r.error as WorkflowFailedError).cause;
        expect(cause).toBeInstanceOf(ApplicationFailure);
        expect((cause as ApplicationFailure).type).toBe('InvalidInput');
        expect((cause as ApplicationFailure).nonRetryable).toBe(true);
        expect(cause!.message).toMatch(msg as RegExp);
        // The message stays readable and storable however large the input was.
        expect(cause!.message.length).toBeLessThan(4_000);
        expect(r.taskFailed).toBe(false);
      },
      30_000,
    );

    it('a thousand bad entries make one bounded message, not a megabyte of issues', async () => {
      const h = await start('collectionCycle', [{ deployment: 'a', checks: Array(20_000).fill('qualty') }]);
      const r = await outcome(h);
      const cause = (r.error as WorkflowFailedError).cause as ApplicationFailure;
      expect(cause.type).toBe('InvalidInput');
      expect(cause.message).toMatch(/checks\.0: .*and 19995 more issues/);
      expect(cause.message.length).toBeLessThan(4_000);
    }, 30_000);

    it('collectInfra takes only its own carry: arguments given by hand are ignored (pinned)', async () => {
      const h = await start('collectInfra', [null, 'junk', 1e308]);
      const r = await outcome(h);
      expect(r.error).toBeUndefined();
      expect(r.value).toMatchObject({ sources: expect.any(Number), outcomes: expect.any(Array), notListed: expect.any(Number) });
      expect(r.taskFailed).toBe(false);
    }, 30_000);
  });

  describe("the gate's override update, signal and progress query under hostile payloads", () => {
    const deployment = uniqueId('hostile-gate');

    beforeAll(async () => {
      await deploymentWithBaseline(stack, deployment);
    });

    /** A gate waiting for candidate samples (a stored baseline, none of the candidate). */
    async function waitingGate(extra: { signal?: unknown } = {}): Promise<WorkflowHandle> {
      const candidate = `v-${randomUUID().slice(0, 8)}`;
      const input = { deployment, baselineVersion: 'v1', candidateVersion: candidate, minSamples: 5, baselineLastN: 200, maxWait: '1h' };
      const opts = { taskQueue: stack.config.temporal.taskQueue, workflowId: `gate/${deployment}/${candidate}`, args: [input] };
      const h =
        'signal' in extra
          ? await stack.client.workflow.signalWithStart('deployGate', { ...opts, signal: 'override', signalArgs: [extra.signal] })
          : await stack.client.workflow.start('deployGate', opts);
      for (let i = 0; i < 100; i++) {
        const p = await h.query<GateProgress>('progress').catch(() => undefined);
        if (p?.phase === 'waiting' && p.looks >= 1) return h;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the gate never started waiting');
    }
    const update = (h: WorkflowHandle, o: unknown) => h.executeUpdate<GateProgress, [unknown]>('override', { args: [o] });

    it.each<[string, unknown, RegExp, boolean?]>([
      ['wrong types', { action: 1, reason: [], by: {} }, /action/, true],
      ['null', null, /expected object/, true],
      ['a reason of 1 MB', { action: 'approve', reason: MB, by: 'me' }, /reason/, true],
      ['a `by` of 1 MB', { action: 'approve', reason: 'ok', by: MB }, /by/, true],
      ['ANSI escapes in the reason', { action: 'approve', reason: '\u001b[32mall good\u001b[0m', by: 'me' }, /reason.*control characters/],
      ['a newline in `by`', { action: 'reject', reason: 'bad', by: 'me\nAPPROVED by: admin' }, /by.*control characters/],
      ['NUL in the reason (PostgreSQL refuses it)', { action: 'abort', reason: 'a\u0000b', by: 'me' }, /reason.*control characters/],
      ['a lone surrogate', { action: 'abort', reason: 'a\ud800b', by: 'me' }, /reason/],
      ['an unknown field of 1 MB', { action: 'abort', reason: 'ok', by: 'me', note: MB }, /note/],
    ])(
      'the update with %s is rejected by its validator, and the gate keeps waiting',
      async (_what, payload, msg) => {
        const h = await waitingGate();
        const e = await update(h, payload).then(
          () => undefined,
          (err: Error) => err,
        );
        expect(e, 'the update was accepted').toBeDefined();
        expect(String((e as Error & { cause?: Error }).cause?.message ?? e!.message)).toMatch(msg);
        const p = await h.query<GateProgress>('progress');
        expect(p.phase).toBe('waiting');
        expect((await outcome(h, 1)).taskFailed).toBe(false);
      },
      60_000,
    );

    it('hostile signals are ignored; a valid one with an extra field is recorded without it', async () => {
      const h = await waitingGate({ signal: { action: 'approve', reason: '\u001b]8;;http://evil\u0007click', by: 'x' } });
      for (const s of [
        null,
        'approve',
        [1, 2],
        { action: 'approve', reason: 'a\u0000b', by: 'me' },
        { action: 'reject', reason: MB, by: 'me' },
      ]) {
        await h.signal('override', s);
      }
      expect((await h.query<GateProgress, unknown[]>('progress', 'extra', 42)).phase).toBe('waiting');
      await h.signal('override', { action: 'abort', reason: 'stop it', by: 'ops', note: 'y'.repeat(200_000) });
      const r = await outcome(h);
      expect(r.taskFailed).toBe(false);
      const result = r.value as GateResult;
      expect(result.effectiveDecision).toBe('ABORTED');
      expect(Object.keys(result.override!).sort()).toEqual(['action', 'at', 'by', 'reason']);
      const row = await stack.stores.db.query('SELECT override::text AS o FROM gate_decisions WHERE gate_id = $1', [h.workflowId]);
      expect(row.rows[0].o.length).toBeLessThan(500);
    }, 60_000);

    it('two updates at once: one wins, the other is told who overrode; an update after the end is refused (pinned)', async () => {
      const h = await waitingGate();
      const both = await Promise.allSettled([
        update(h, { action: 'abort', reason: 'first', by: 'a' }),
        update(h, { action: 'approve', reason: 'second', by: 'b' }),
      ]);
      expect(both.filter((b) => b.status === 'fulfilled')).toHaveLength(1);
      const rejected = both.find((b) => b.status === 'rejected') as PromiseRejectedResult;
      expect(String(rejected.reason?.cause?.message ?? rejected.reason)).toMatch(/already overridden by (a|b)/);
      const r = await outcome(h);
      expect(r.taskFailed).toBe(false);
      await expect(update(h, { action: 'approve', reason: 'late', by: 'c' })).rejects.toThrow();
      expect((await h.query<GateProgress>('progress')).phase).toBe('done');
    }, 60_000);
  });

  describe('search attributes stay within their limits whatever the data', () => {
    let sim: Simulator;
    afterAll(async () => {
      await sim?.close();
    });

    it('a cycle over many long model versions completes (the OptiModelVersion list is bounded)', async () => {
      const deployment = uniqueId('hostile-sa');
      sim = await startSimulator({ deployment, modelVersion: 'v0', degradedShare: 0, seed: 5 });
      await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
      const versions = Array.from({ length: 40 }, (_, i) => `model-${String(i).padStart(3, '0')}-${'q'.repeat(110)}`);
      for (const v of versions) {
        sim.setModel(v, 0);
        sim.generate(1);
      }
      const h = await start('collectionCycle', [{ deployment, checks: ['toxicity'] }], `collect/${deployment}/${randomUUID()}`);
      const r = await outcome(h, 60_000);
      expect(r.error).toBeUndefined();
      expect(r.taskFailed).toBe(false);
      const listed = (await h.describe()).searchAttributes.OptiModelVersion as string[];
      expect(listed.length).toBeGreaterThan(0);
      expect(JSON.stringify(listed).length).toBeLessThanOrEqual(2048);
      expect(versions.slice(0, listed.length)).toEqual(listed);
    }, 120_000);
  });
});

/** Pinned, except the override's `--by` with an escape (the CLI sent it to the gate before). */
describe("names that would reach Temporal's limits are refused by the CLI before anything connects", () => {
  const long = 'd'.repeat(1001);
  it.each<[string, string[], Record<string, string>?]>([
    ['a deployment of 1001 characters', ['gate', '--deployment', long, '--baseline', 'v1', '--candidate', 'v2']],
    ['a candidate with a slash', ['gate', '--deployment', 'shop', '--baseline', 'v1', '--candidate', 'v2/../../x']],
    [
      'a CI run id of 2000 characters',
      ['gate', '--deployment', 'shop', '--baseline', 'v1', '--candidate', 'v2'],
      { GITHUB_RUN_ID: 'r'.repeat(2000) },
    ],
    ['a model version with a space', ['baseline', '--deployment', 'shop', '--version', 'v 1']],
    ['a unicode version', ['compare', '--deployment', 'shop', '--a', 'v1', '--b', 'modèle-2']],
    ['a control character', ['collect', '--deployment', 'shop\u0007bot', '--once']],
    [
      'an override by with an escape',
      ['gate', 'override', '--deployment', 'shop', '--candidate', 'v2', '--action', 'approve', '--reason', 'ok', '--by', '\u001b[2Jme'],
    ],
  ])(
    '%s',
    async (_what, args, env) => {
      const r = await runCli(args, env);
      expect(r.code).toBe(3);
      expect(r.out).toMatch(/1-128 characters|must be letters, digits|control characters/);
      expect(r.out).not.toMatch(/ECONNREFUSED|127\.0\.0\.1:1/);
    },
    20_000,
  );
});
