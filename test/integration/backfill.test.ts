/**
 * The backfill workflow on the real stack: interactions stored in ClickHouse, scored by the
 * offline judge (one worker set) or the LLM judge through the local Groq-compatible server
 * (another worker set on the same servers), as a user switching judge would.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judgeName, promptVersionsFor, sampled } from '../../activities/collector/activities.js';
import type { InteractionRow } from '../../activities/storage/clickhouse/rows.js';
import { claimCycle, releaseCycle, runningCycle, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { BackfillInput, BackfillResult, BackfillStatus } from '../../domain/collector/backfill.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { SA } from '../../common/search-attributes.js';
import { runCli } from '../helpers/cli.js';
import { cliEnv, startTestStack, testConfig, uniqueId, type TestStack } from '../helpers/env.js';
import { startGroqStub, stubLlmEnv, type GroqStub } from '../helpers/groq-stub.js';
import { recordHistory } from '../helpers/histories.js';

const KEY = 'gsk_test_backfill_1a2b3c4d5e';
const HOUR = 3_600_000;

describe('backfill', () => {
  let offline: TestStack;
  let llm: TestStack;
  let stub: GroqStub;
  const dir = mkdtempSync(join(tmpdir(), 'optiinfra-backfill-'));

  beforeAll(async () => {
    stub = await startGroqStub();
    offline = await startTestStack();
    llm = await startTestStack(testConfig(stubLlmEnv(stub, KEY, { LLM_MAX_RETRIES: '1' })));
  });
  afterAll(async () => {
    await llm?.stop();
    await offline?.stop();
    await stub?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A registered deployment whose source is never read (its interactions are stored directly). */
  async function deploymentOf(stack: TestStack, prefix: string, sampleRate = 1): Promise<string> {
    const deployment = uniqueId(prefix);
    await upsertDeployment(stack.stores.db, {
      id: deployment,
      source: { type: 'http', url: 'http://127.0.0.1:1/x' },
      sample_rate: sampleRate,
    });
    return deployment;
  }

  /** Interactions stored as a cycle stores them: `n` of `version` at `at(i)` (epoch ms), ids `<deployment>-<tag>-<i>`. */
  async function store(
    stack: TestStack,
    deployment: string,
    tag: string,
    version: string,
    n: number,
    at: (i: number) => number,
    cycleId = 'test',
  ) {
    const rows: InteractionRow[] = Array.from({ length: n }, (_, i) => ({
      deployment,
      id: `${deployment}-${tag}-${String(i).padStart(4, '0')}`,
      model_version: version,
      ts: Math.floor(at(i) / 1000),
      prompt: `What is ${i} plus one?`,
      response: `${i} plus one is ${i + 1}.`,
      context: `${i} plus one equals ${i + 1}.`,
      has_context: 1,
      metadata: '{}',
      source: 'http',
      cycle_id: cycleId,
      ver: 1,
    }));
    expect(await stack.stores.ch.insertIsolatingBad('interactions', rows)).toEqual([]);
    return rows.map((r) => r.id);
  }

  /** Score rows of a deployment by a judge (with FINAL: one per interaction, check, prompt version and judge), optionally of some ids. */
  async function scoreRows(stack: TestStack, deployment: string, judge: string, opts: { final?: boolean; ids?: string[] } = {}) {
    const ids = opts.ids ? ` AND interaction_id IN (${opts.ids.map((i) => `'${i}'`).join(', ')})` : '';
    const [r] = await stack.stores.ch.query<{ n: string }>(
      `SELECT count() AS n FROM ${stack.config.clickhouse.database}.scores ${opts.final === false ? '' : 'FINAL'}
       WHERE deployment = '${deployment}' AND judge = '${judge}'${ids}`,
    );
    return Number(r?.n ?? 0);
  }

  const run = (stack: TestStack, input: BackfillInput, workflowId = `backfill/${input.deployment}/${uniqueId('t')}`) =>
    stack.client.workflow.execute('backfill', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      args: [input],
    }) as Promise<BackfillResult>;

  const since = (ms: number) => new Date(Date.now() - ms).toISOString();

  it('scores, under a new judge, every interaction a cycle scored under the old one, once', async () => {
    // Pins: after a switch of judge (offline → LLM), a backfill judges each stored interaction of
    // the window once; checks already stored for the new judge are skipped by the scoring
    // activity (a backfill of one check, then of all three, calls the LLM once per interaction
    // each time and stores 90 rows, not 120); a third backfill calls the LLM for nothing.
    const deployment = uniqueId('bf-judge');
    const file = join(dir, `${deployment}.jsonl`);
    const now = Date.now();
    writeFileSync(
      file,
      Array.from({ length: 30 }, (_, i) =>
        JSON.stringify({
          id: `${deployment}-${i}`,
          deployment,
          model_version: 'v1',
          timestamp: new Date(now - (i + 1) * 60_000).toISOString(),
          prompt: `What is the capital of country ${i}?`,
          response: `The capital of country ${i} is City ${i}.`,
          context: `City ${i} is the capital of country ${i}.`,
        }),
      ).join('\n') + '\n',
    );
    await upsertDeployment(offline.stores.db, { id: deployment, source: { type: 'jsonl', path: file }, sample_rate: 1 });
    const cycle = (await offline.client.workflow.execute('collectionCycle', {
      taskQueue: offline.config.temporal.taskQueue,
      workflowId: `collect/${deployment}/first`,
      args: [{ deployment }],
    })) as CycleResult;
    expect(cycle).toMatchObject({ stored: 30, judge: 'offline' });
    expect(await scoreRows(offline, deployment, 'offline')).toBe(90);
    const groq = judgeName(llm.config);
    expect(groq).toBe('groq:openai/gpt-oss-20b');
    expect(await scoreRows(llm, deployment, groq)).toBe(0);

    const calls = () => stub.requests.length;
    stub.clear();
    const window = { deployment, from: since(2 * HOUR) };
    const first = await run(llm, { ...window, checks: ['quality'] });
    expect(first).toMatchObject({
      seen: 30,
      selected: 30,
      alreadyScored: 0,
      scored: 30,
      skipped: 0,
      failed: 0,
      complete: true,
      judge: groq,
    });
    expect(first.coverage).toEqual({ interactions: 30, scored: 30 });
    expect(calls()).toBe(30);

    const second = await run(llm, window);
    // Every interaction lacked two checks: judged once (one combined call), its stored quality skipped.
    expect(second).toMatchObject({ seen: 30, selected: 30, alreadyScored: 0, skipped: 30, failed: 0, complete: true });
    expect(second.scored + second.abstained).toBe(60);
    expect(second.llmCalls).toBe(30);
    expect(calls()).toBe(60);
    expect(second.coverage).toEqual({ interactions: 30, scored: 30 });

    const third = await run(llm, window);
    expect(third).toMatchObject({ seen: 30, alreadyScored: 30, selected: 0, scored: 0, skipped: 0, llmCalls: 0, complete: true });
    expect(calls()).toBe(60);

    expect(await scoreRows(llm, deployment, groq)).toBe(90);
    expect(await scoreRows(llm, deployment, groq, { final: false })).toBe(90);
    // The old judge's rows are untouched.
    expect(await scoreRows(offline, deployment, 'offline', { final: false })).toBe(90);
  });

  it('scores only the window [from, to) and the model version asked for', async () => {
    // Pins: the window is half-open on `ts` (an interaction at `from` is in, one at `to` is out),
    // other versions and days stay unscored, and ids are read once however often an interaction
    // was stored.
    const deployment = await deploymentOf(offline, 'bf-window');
    const from = Date.parse('2026-11-20T00:00:00Z');
    const to = from + 24 * HOUR;
    for (const [day, offset] of [
      ['d0', -24 * HOUR],
      ['d1', 0],
      ['d2', 24 * HOUR],
    ] as const) {
      for (const v of ['v1', 'v2']) await store(offline, deployment, `${day}-${v}`, v, 10, (i) => from + offset + (i + 1) * 60_000);
    }
    const atFrom = await store(offline, deployment, 'edge-from', 'v1', 1, () => from);
    const atTo = await store(offline, deployment, 'edge-to', 'v1', 1, () => to);
    // One interaction stored twice (as two racing inserts would): still one id.
    await store(offline, deployment, 'd1-v1', 'v1', 1, (i) => from + (i + 1) * 60_000);

    const workflowId = `backfill/${deployment}/window`;
    const r = await run(
      offline,
      { deployment, modelVersion: 'v1', from: new Date(from).toISOString(), to: new Date(to).toISOString() },
      workflowId,
    );
    expect(r).toMatchObject({ seen: 11, selected: 11, alreadyScored: 0, failed: 0, complete: true, modelVersion: 'v1' });
    expect(r.scored + r.abstained).toBe(33);
    expect(r.coverage).toEqual({ interactions: 11, scored: 11 });
    const inWindow = [...atFrom, ...Array.from({ length: 10 }, (_, i) => `${deployment}-d1-v1-${String(i).padStart(4, '0')}`)];
    expect(await scoreRows(offline, deployment, 'offline', { ids: inWindow })).toBe(33);
    expect(await scoreRows(offline, deployment, 'offline', { ids: atTo })).toBe(0);
    expect(await scoreRows(offline, deployment, 'offline', { final: false })).toBe(33);
    await recordHistory(offline.client, workflowId, 'backfill');

    // The same window for every version: only v2's ten are new.
    const all = await run(offline, { deployment, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    expect(all).toMatchObject({ seen: 21, alreadyScored: 11, selected: 10, failed: 0 });
    expect(all.coverage).toEqual({ interactions: 21, scored: 21 });
    expect(await scoreRows(offline, deployment, 'offline', { final: false })).toBe(63);
  });

  it('sends at most `limit` interactions to the judge, and a second backfill goes on from there', async () => {
    // Pins: the limit counts interactions sent to the judge (not those already scored), the result
    // says where it stopped and that the window is not complete, and a backfill started again
    // scores the next ones rather than rereading the first.
    const deployment = await deploymentOf(offline, 'bf-limit');
    const ids = await store(offline, deployment, 'x', 'v1', 25, (i) => Date.now() - HOUR + i * 1000);
    const input = { deployment, from: since(2 * HOUR), limit: 7, pageSize: 5, checks: ['quality' as const] };
    const first = await run(offline, input);
    expect(first).toMatchObject({ selected: 7, scored: 7, seen: 7, complete: false, after: ids[6] });
    expect(first.note).toMatch(/limit of 7 interactions reached/);
    expect(first.coverage).toEqual({ interactions: 25, scored: 7 });
    expect(await scoreRows(offline, deployment, 'offline', { ids: ids.slice(0, 7) })).toBe(7);
    expect(await scoreRows(offline, deployment, 'offline', { final: false })).toBe(7);

    const second = await run(offline, input);
    expect(second).toMatchObject({ selected: 7, scored: 7, alreadyScored: 7, complete: false, after: ids[13] });
    expect(await scoreRows(offline, deployment, 'offline', { final: false })).toBe(14);

    const rest = await run(offline, { ...input, limit: 100 });
    expect(rest).toMatchObject({ selected: 11, scored: 11, alreadyScored: 14, seen: 25, complete: true, note: '' });
    expect(rest.coverage).toEqual({ interactions: 25, scored: 25 });
  });

  it('continues as new over many pages and carries its totals', async () => {
    // Pins: 57 interactions at 5 ids a page are 12 pages; at 2 pages a run that is 6 runs of one
    // workflow id; the totals of the last run count every run (sampled, not sampled, already
    // scored, scored) and every sampled interaction has exactly one score row.
    const deployment = await deploymentOf(offline, 'bf-can', 0.5);
    const ids = await store(offline, deployment, 'x', 'v1', 57, (i) => Date.now() - HOUR + i * 1000);
    const chosen = ids.filter((id) => sampled(id, 0.5));
    expect(chosen.length).toBeGreaterThan(15);
    expect(chosen.length).toBeLessThan(45);
    const base = { deployment, from: since(2 * HOUR), checks: ['toxicity' as const] };
    // Ten of them scored before.
    expect(await run(offline, { ...base, limit: 10 })).toMatchObject({ selected: 10, scored: 10 });

    const workflowId = `backfill/${deployment}/can`;
    const handle = await offline.client.workflow.start('backfill', {
      taskQueue: offline.config.temporal.taskQueue,
      workflowId,
      args: [{ ...base, pageSize: 5, pagesPerRun: 2, batchSize: 2, maxConcurrentBatches: 3 }],
    });
    const r = (await handle.result()) as BackfillResult;
    expect(r).toMatchObject({
      pages: 12,
      seen: 57,
      notSampled: 57 - chosen.length,
      alreadyScored: 10,
      selected: chosen.length - 10,
      scored: chosen.length - 10,
      failed: 0,
      complete: true,
    });
    expect(r.coverage.scored).toBe(chosen.length);
    expect(await scoreRows(offline, deployment, 'offline', { final: false })).toBe(chosen.length);
    expect(await scoreRows(offline, deployment, 'offline', { ids: chosen })).toBe(chosen.length);

    const runIds = [handle.firstExecutionRunId];
    for (let i = 0; i < 10; i++) {
      const h = await offline.client.workflow.getHandle(workflowId, runIds.at(-1)).fetchHistory();
      const next = h.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
      if (!next) break;
      runIds.push(next);
    }
    expect(runIds).toHaveLength(6);
    // The last run answers the status query with the carried totals.
    const s = await offline.client.workflow.getHandle(workflowId).query<BackfillStatus>('status');
    expect(s).toMatchObject({ phase: 'done', pages: 12, seen: 57, scored: chosen.length - 10, after: ids.at(-1) });
  });

  it('leaves to the running cycle the interactions it stored, and takes no lease', async () => {
    // Pins: interactions stored by the cycle that holds the deployment's lease are that cycle's to
    // score (judging them beside it would pay twice and write a second row each); the backfill
    // neither takes nor releases the lease; once the cycle is done, a backfill takes what it left.
    const deployment = await deploymentOf(offline, 'bf-lease');
    const cycleId = `collect/${deployment}/running`;
    await store(offline, deployment, 'a', 'v1', 4, (i) => Date.now() - HOUR + i * 1000);
    const mine = await store(offline, deployment, 'b', 'v1', 3, (i) => Date.now() - HOUR + i * 1000, cycleId);
    expect(await claimCycle(offline.stores.db, deployment, cycleId, 600)).toEqual({ claimed: true });

    const during = await run(offline, { deployment, from: since(2 * HOUR) });
    expect(during).toMatchObject({ seen: 7, inCycle: 3, selected: 4, alreadyScored: 0, complete: true });
    expect(during.coverage).toEqual({ interactions: 7, scored: 4 });
    expect(await scoreRows(offline, deployment, 'offline', { ids: mine })).toBe(0);
    expect(await runningCycle(offline.stores.db, deployment)).toBe(cycleId);

    await releaseCycle(offline.stores.db, deployment, cycleId);
    const later = await run(offline, { deployment, from: since(2 * HOUR) });
    expect(later).toMatchObject({ seen: 7, inCycle: 0, selected: 3, alreadyScored: 4 });
    expect(later.coverage).toEqual({ interactions: 7, scored: 7 });
    expect(await scoreRows(offline, deployment, 'offline', { final: false })).toBe(21);
    expect(await runningCycle(offline.stores.db, deployment)).toBeUndefined();
  });

  it('fails at once with InvalidInput on a hand-built input', async () => {
    // Pins: a start by hand with a misspelt field, a date that is no date, a limit out of range,
    // a reversed window or a malformed carry fails the workflow as InvalidInput naming the field
    // (not a workflow task retried for ever).
    const deployment = await deploymentOf(offline, 'bf-bad');
    const cases: Array<[unknown, RegExp]> = [
      [{ deployment, from: 'yesterday' }, /from: from must be an ISO-8601/],
      [{ deployment, from: since(HOUR), limit: 0 }, /limit/],
      [{ deployment, from: since(HOUR), limit: 1_000_001 }, /limit/],
      [{ deployment, from: since(HOUR), lmit: 5 }, /lmit/],
      [{ deployment: 'a b', from: since(HOUR) }, /deployment/],
      [{ deployment, from: '2026-11-20T00:00:00Z', to: '2026-11-19T00:00:00Z' }, /to: to .* must be after from/],
      [{ deployment, from: '2999-01-01T00:00:00Z' }, /must be after from/],
      [{ deployment, from: since(HOUR), carry: { after: null, totals: {} } }, /carry/],
      [null, /expected object/],
    ];
    for (const [input, msg] of cases) {
      const t0 = Date.now();
      const e = await run(offline, input as BackfillInput, `backfill/bad/${uniqueId('b')}`).catch((x: unknown) => x);
      expect(e, JSON.stringify(input)).toBeInstanceOf(WorkflowFailedError);
      const cause = (e as WorkflowFailedError).cause as ApplicationFailure;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect(cause.type).toBe('InvalidInput');
      expect(cause.message).toMatch(msg);
      expect(Date.now() - t0).toBeLessThan(15_000);
    }
  });

  it('stops on an LLM configuration failure with its message, and continues when started again', async () => {
    // Pins: a rejected key (401) stops the backfill as LlmAuthError naming GROQ_API_KEY and saying
    // it can be started again; started again, it judges only what is missing: every interaction
    // ends with exactly one row per check.
    const deployment = await deploymentOf(llm, 'bf-auth');
    await store(llm, deployment, 'x', 'v1', 6, (i) => Date.now() - HOUR + i * 1000);
    stub.clear();
    stub.enqueue({ kind: 'status', status: 401 });
    const input = { deployment, from: since(2 * HOUR), batchSize: 1, maxConcurrentBatches: 1 };
    const e = await run(llm, input).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WorkflowFailedError);
    const cause = (e as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('LlmAuthError');
    expect(cause.message).toMatch(/GROQ_API_KEY/);
    expect(cause.message).toMatch(/start it again later: it continues where scores are missing/);

    const again = await run(llm, input);
    expect(again).toMatchObject({ seen: 6, selected: 6, failed: 0, complete: true });
    expect(again.coverage).toEqual({ interactions: 6, scored: 6 });
    const judge = judgeName(llm.config);
    expect(await scoreRows(llm, deployment, judge, { final: false })).toBe(18);
  });

  it('CLI: refuses an unknown deployment, and starts, waits for and prints a backfill', async () => {
    // Pins: `optiinfra backfill` on an unregistered deployment exits 3 naming it and starts
    // nothing; on a registered one with --wait --json it prints the workflow id and the result of
    // the window (the interactions of the last week, not the older one); while a backfill of the
    // deployment runs, another is refused naming it.
    const env = cliEnv(offline.config) as Record<string, string>;
    const unknown = uniqueId('bf-none');
    const bad = await runCli(['backfill', '--deployment', unknown], env);
    expect(bad.code, bad.out).toBe(3);
    expect(bad.out).toMatch(new RegExp(`deployment '${unknown}' is not registered`));

    const deployment = await deploymentOf(offline, 'bf-cli');
    await store(offline, deployment, 'new', 'v1', 4, (i) => Date.now() - 2 * HOUR - i * 1000);
    await store(offline, deployment, 'old', 'v1', 3, (i) => Date.now() - 10 * 24 * HOUR - i * 1000);
    const ok = await runCli(['backfill', '--deployment', deployment, '--since', '7d', '--wait', '--json'], env);
    expect(ok.code, ok.out).toBe(0);
    const json = JSON.parse(ok.out.slice(ok.out.indexOf('{'))) as BackfillResult & { workflowId: string };
    expect(json.workflowId).toMatch(new RegExp(`^backfill/${deployment}/\\d{4}-`));
    expect(json).toMatchObject({ seen: 4, selected: 4, complete: true, coverage: { interactions: 4, scored: 4 } });
    const judge = judgeName(offline.config);
    expect(promptVersionsFor(judge, offline.config.llm.judgeMode)).toEqual(json.promptVersions);
    expect(await scoreRows(offline, deployment, judge, { final: false })).toBe(12);

    // A backfill of the deployment that runs (here: waits for a worker that never comes) is named
    // and the new one refused, so two backfills never judge the same interactions side by side.
    const stuck = await offline.client.workflow.start('backfill', {
      taskQueue: uniqueId('nobody-polls'),
      workflowId: `backfill/${deployment}/stuck`,
      args: [{ deployment, from: since(HOUR) }],
      typedSearchAttributes: [
        { key: SA.deployment, value: deployment },
        { key: SA.kind, value: 'backfill' },
      ],
    });
    const query = `OptiDeployment = '${deployment}' AND OptiKind = 'backfill' AND ExecutionStatus = 'Running'`;
    for (let i = 0; i < 50 && !(await offline.client.workflow.count(query)).count; i++) await new Promise((r) => setTimeout(r, 200));
    const refused = await runCli(['backfill', '--deployment', deployment], env);
    expect(refused.code, refused.out).toBe(3);
    expect(refused.out).toMatch(new RegExp(`backfill 'backfill/${deployment}/stuck' of deployment '${deployment}' is running`));
    await stuck.terminate('test');
    for (let i = 0; i < 50 && (await offline.client.workflow.count(query)).count; i++) await new Promise((r) => setTimeout(r, 200));

    const started = await runCli(['backfill', '--deployment', deployment, '--from', '2026-01-01T00:00:00Z'], env);
    expect(started.code, started.out).toBe(0);
    expect(started.out).toMatch(/started backfill\//);
    expect(started.out).toMatch(/temporal workflow query --workflow-id 'backfill\/.*' --type status/);
    const id = /started (backfill\/\S+)/.exec(started.out)![1]!;
    const later = (await offline.client.workflow.getHandle(id).result()) as BackfillResult;
    // The older three are in this window; the four scored above are not judged again.
    expect(later).toMatchObject({ seen: 7, alreadyScored: 4, selected: 3, complete: true });
  });
});
