/**
 * Security on the real stack:
 * - secrets (the Groq key, the database password, the webhook secret) reach only the places
 *   that need them: never a workflow history, a worker log line, a ClickHouse row or a
 *   PostgreSQL row, while a real worker process runs collection with LLM faults and a gate
 *   that rolls back through a signed webhook;
 * - ids with SQL or shell metacharacters are refused at every boundary (CLI, workflow input,
 *   SQL quoting, source records) before they reach SQL or a shell.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { SqlValueError, sqlId, sqlIdList, sqlString } from '../../activities/storage/clickhouse/sql.js';
import { getCursor, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { startOrAttachGate } from '../../client/gate.js';
import { openStores, type Stores } from '../../client/runtime.js';
import { main } from '../../client/cli/index.js';
import { repoRoot } from '../../stack/paths.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import type { GateResult } from '../../domain/gate/types.js';
import { startGroqStub, type GroqStub } from '../helpers/groq-stub.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { cliEnv, startTestStack, testConfig, testEnv, uniqueId, type TestStack } from '../helpers/env.js';

const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Secrets

const GROQ_KEY = 'gsk_SECURITYTEST_fake_key_7f3a91c2e5d8';
const DB_PASSWORD = 'pgpw_SECURITYTEST_4b8e2d6f';
const WEBHOOK_SECRET = 'whsec_SECURITYTEST_0c9d8e7f6a5b';
/** Credentials written into URLs the product is given: a source's and a rollback webhook's. */
const SOURCE_PASSWORD = 'srcpw_SECURITYTEST_9e1d';
const HOOK_PASSWORD = 'hookpw_SECURITYTEST_5a7c';
const SECRETS = {
  GROQ_API_KEY: GROQ_KEY,
  'DATABASE_URL password': DB_PASSWORD,
  OPTIINFRA_WEBHOOK_SECRET: WEBHOOK_SECRET,
  'source URL password': SOURCE_PASSWORD,
  'webhook URL password': HOOK_PASSWORD,
};

/** `url` with user:password@ written into it. */
function withCredentials(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

/** The test database's URL with a password added (the machine's PostgreSQL and PGlite both ignore it). */
function withPassword(url: string, password: string): string {
  const u = new URL(url);
  if (!u.username) u.username = 'postgres';
  u.password = password;
  return u.toString();
}

function expectNoSecret(where: string, text: string) {
  for (const [name, secret] of Object.entries(SECRETS)) {
    expect(text.includes(secret), `${name} found in ${where}`).toBe(false);
  }
}

describe('secrets never leak from a real worker process', () => {
  // The test's own view of the stack (no password, no key): only for setup and for reading back.
  const config = testConfig();
  const deployment = uniqueId('secret');
  const databaseUrl = withPassword(testEnv().databaseUrl, DB_PASSWORD);
  let stores: Stores;
  let client: Client;
  let stub: GroqStub;
  let receiver: WebhookReceiver;
  let sim: Simulator;
  let worker: ChildProcess | undefined;
  let logs = '';
  let exited: Promise<unknown> | undefined;

  function startWorker(): ChildProcess {
    const env = cliEnv(config, {
      DATABASE_URL: databaseUrl,
      LLM_ENABLED: 'true',
      GROQ_API_KEY: GROQ_KEY,
      GROQ_BASE_URL: stub.baseURL,
      LLM_MAX_RETRIES: '1',
      LLM_TIMEOUT: '5',
      LLM_REQUESTS_PER_SECOND: '200',
      OPTIINFRA_WEBHOOK_SECRET: WEBHOOK_SECRET,
      OPTIINFRA_WORKFLOW_BUNDLE: testEnv().bundlePath,
      OPTIINFRA_HOME: join(testEnv().home, `security-worker-${randomUUID().slice(0, 6)}`),
    });
    const p = spawn(process.execPath, ['--import', 'tsx', join(repoRoot(), 'client', 'cli', 'index.ts'), 'worker'], {
      cwd: repoRoot(),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stdout?.on('data', (c: Buffer) => (logs += c.toString('utf8')));
    p.stderr?.on('data', (c: Buffer) => (logs += c.toString('utf8')));
    exited = new Promise((r) => p.once('exit', r));
    return p;
  }

  beforeAll(async () => {
    stores = await openStores(config);
    const connection = await Connection.connect({ address: config.temporal.address });
    client = new Client({ connection, namespace: config.temporal.namespace });
    stub = await startGroqStub();
    // The first delivery fails (a retried, logged error), the second is accepted.
    receiver = await startWebhookReceiver({ secret: WEBHOOK_SECRET, respond: () => (receiver.calls.length === 1 ? 503 : 200) });
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.1, seed: 7 });
    await upsertDeployment(stores.db, {
      id: deployment,
      source: { type: 'http', url: withCredentials(sim.url, 'reader', SOURCE_PASSWORD) },
      sample_rate: 1,
    });
    worker = startWorker();
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      const killer = setTimeout(() => worker?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await sim?.close();
    await receiver?.close();
    await stub?.close();
    await client?.connection.close();
    await stores?.close();
  });

  it('runs a collection cycle with LLM faults and a gate with a webhook rollback, then finds no secret anywhere', async () => {
    // --- produce work, errors and logs -------------------------------------------------------
    sim.generate(16);
    sim.setModel('v2', 0.5);
    sim.generate(8);
    stub.enqueue(
      { kind: 'status', status: 500 },
      { kind: 'malformed' },
      { kind: 'status', status: 500 },
      { kind: 'malformed' },
      { kind: 'malformed' },
    );
    const cycle = (await client.workflow.execute('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `collect/${deployment}/security`,
      args: [{ deployment, batchSize: 8 }],
    })) as CycleResult;
    expect(cycle.stored).toBe(24);
    expect(cycle.scored).toBeGreaterThan(0);
    expect(cycle.judge).toMatch(/^groq:/);
    expect(stub.stats().pendingFaults).toBe(0);
    expect(stub.stats().faults).toMatchObject({ status: 2, malformed: 3 });

    // Too few samples to decide within a few seconds: INCONCLUSIVE at the deadline, which counts
    // as REJECT (the default), so the gate explains (LLM) and rolls back through the signed webhook.
    // Started the way CI starts it (the typed client): the webhook URL's credentials stay out of history.
    const gateWith = (url: string) =>
      startOrAttachGate(
        client,
        config,
        stores.db,
        {
          deployment,
          baselineVersion: 'v1',
          candidateVersion: 'v2',
          minSamples: 5,
          maxWait: '3s',
          checkEvery: '1s',
          deployer: { type: 'webhook', url },
        },
        'sec-run',
      );
    const hookUrl = withCredentials(receiver.url, 'hook', HOOK_PASSWORD);
    const { handle } = await gateWith(hookUrl);
    const gate = (await handle.result()) as GateResult;
    expect(gate.effectiveDecision).toBe('REJECT');
    expect(gate.rollback.status).toBe('delivered');
    expect(receiver.calls.length).toBe(2);
    expect(receiver.calls.every((c) => c.signatureValid)).toBe(true);
    // URL credentials are used as Basic auth, never shown.
    expect(receiver.calls[0]!.headers.authorization).toBe(`Basic ${Buffer.from(`hook:${HOOK_PASSWORD}`).toString('base64')}`);

    // A later start of the same gate (a CI re-run) never replaces its stored rollback URL: another
    // address is refused, the same address with other credentials attaches.
    const storedUrl = async () =>
      (await stores.db.query('SELECT url FROM deployer_urls WHERE gate_id = $1', [`gate/${deployment}/v2/sec-run`])).rows[0]?.url;
    expect(await storedUrl()).toBe(hookUrl);
    await expect(gateWith(`${receiver.url}/elsewhere?token=${HOOK_PASSWORD}`)).rejects.toThrow(
      /already exists for this CI run with other parameters/,
    );
    expect((await gateWith(withCredentials(receiver.url, 'other', HOOK_PASSWORD))).attached).toBe(true);
    expect(await storedUrl()).toBe(hookUrl);

    // --- the scan is meaningful: the key went to the LLM server, the secret signed the webhook --
    expect(stub.requests.length).toBeGreaterThan(cycle.stored); // one call per interaction (combined), plus retries
    for (const r of stub.requests) expect(r.headers.authorization).toBe(`Bearer ${GROQ_KEY}`);
    for (const r of stub.requests) expectNoSecret(`LLM request body ${r.seq}`, JSON.stringify(r.body));
    for (const c of receiver.calls) expectNoSecret('webhook request', JSON.stringify(c));

    // --- workflow histories ------------------------------------------------------------------
    let histories = 0;
    const types = new Set<string>();
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${config.temporal.taskQueue}'` })) {
      const h = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      expectNoSecret(`history of ${wf.workflowId}`, JSON.stringify(h));
      histories++;
      types.add(wf.type);
    }
    // The cycle, the gate, its baseline and explanation children.
    expect(histories).toBeGreaterThanOrEqual(4);
    expect([...types].sort()).toEqual(expect.arrayContaining(['collectionCycle', 'deployGate', 'computeBaseline', 'explainDecision']));

    // --- ClickHouse rows ---------------------------------------------------------------------
    const db = config.clickhouse.database;
    const scores = await stores.ch.query<Record<string, unknown>>(`SELECT * FROM ${db}.scores WHERE deployment = ${sqlId(deployment)}`);
    const interactions = await stores.ch.query<Record<string, unknown>>(
      `SELECT * FROM ${db}.interactions WHERE deployment = ${sqlId(deployment)}`,
    );
    expect(scores.length).toBeGreaterThanOrEqual(72);
    expect(interactions.length).toBeGreaterThanOrEqual(24);
    expectNoSecret('ClickHouse scores', JSON.stringify(scores));
    expectNoSecret('ClickHouse interactions', JSON.stringify(interactions));

    // --- PostgreSQL rows (whole tables) ------------------------------------------------------
    const counts: Record<string, number> = {};
    // Every table but where URLs are configured (a deployment's source, a gate's webhook URL).
    const configured: Record<string, string> = { deployments: 'source' };
    for (const [table, col] of [
      ['collection_runs', 'deployment'],
      ['gate_decisions', 'deployment'],
      ['rollbacks', 'deployment'],
      ['baselines', 'deployment'],
      ['deployments', 'id'],
    ] as const) {
      const all = await stores.db.query(`SELECT * FROM ${table}`);
      const shown = all.rows.map((r: Record<string, unknown>) =>
        Object.fromEntries(Object.entries(r).filter(([k]) => k !== configured[table])),
      );
      expectNoSecret(`PostgreSQL ${table}`, JSON.stringify(shown));
      counts[table] = all.rows.filter((r: Record<string, unknown>) => r[col] === deployment).length;
    }
    expect(counts).toEqual({ collection_runs: 1, gate_decisions: 1, rollbacks: 1, baselines: 1, deployments: 1 });

    // --- the worker's own output --------------------------------------------------------------
    expect(logs).toMatch(/worker on .*LLM groq/);
    // The logs hold the errors this test provoked, so the scan covers error paths too.
    expect(logs).toMatch(/LlmServerError/);
    expect(logs).toMatch(/unusable reply/);
    expect(logs).toMatch(/answered 503/);
    expectNoSecret('worker logs', logs);

    // --- what the CLI shows ------------------------------------------------------------------------
    const env = cliEnv(config, { DATABASE_URL: databaseUrl, OPTIINFRA_HOME: join(testEnv().home, 'security-cli') });
    for (const args of [
      ['deployment', 'list'],
      ['deployment', 'list', '--json'],
      ['gate', 'status', '--deployment', deployment, '--candidate', 'v2', '--ci-run', 'sec-run'],
    ]) {
      const r = await run(process.execPath, ['--import', 'tsx', join(repoRoot(), 'client', 'cli', 'index.ts'), ...args], {
        cwd: repoRoot(),
        env,
      }).catch((e: { stdout?: string; stderr?: string }) => e);
      expect(`${r.stdout ?? ''}`.length).toBeGreaterThan(0);
      expectNoSecret(`CLI ${args.join(' ')}`, `${r.stdout ?? ''}${r.stderr ?? ''}`);
    }
  }, 240_000);
});

// ---------------------------------------------------------------------------------------------
// Ids with SQL or shell metacharacters

const BAD_IDS: ReadonlyArray<[string, string]> = [
  ['SQL injection', "x'; DROP TABLE scores; --"],
  ['a blank', 'a b'],
  ['command substitution', '$(id)'],
  ['backticks', '`id`'],
  ['a command separator', 'v1;rm -rf /'],
  ['path traversal', '../../etc/passwd'],
  ['a NUL byte', '\u0000'],
  ['200 characters', `v${'x'.repeat(199)}`],
];
/** argv strings are C strings: a NUL cannot be passed to a process at all, so the CLI table leaves it out. */
const BAD_ARGV = BAD_IDS.filter(([, v]) => !v.includes('\u0000'));
const ID_MESSAGE = /must be 1-128 characters of letters, digits, '\.', '_', ':' or '-', starting with a letter or digit/;

/** The ApplicationFailure at the root of a failed workflow. */
function rootFailure(e: unknown): ApplicationFailure {
  expect(e).toBeInstanceOf(WorkflowFailedError);
  const cause = (e as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

/** Event types of a history that mean the workflow touched the world (activities, children, local activities). */
async function sideEffectsOf(handle: WorkflowHandle): Promise<string[]> {
  const h = await handle.fetchHistory();
  const kinds: string[] = [];
  for (const ev of h.events ?? []) {
    if (ev.activityTaskScheduledEventAttributes) kinds.push('activity');
    if (ev.startChildWorkflowExecutionInitiatedEventAttributes) kinds.push('child');
    if (ev.markerRecordedEventAttributes) kinds.push('marker (local activity)');
    if (ev.upsertWorkflowSearchAttributesEventAttributes) kinds.push('search attributes');
  }
  return kinds;
}

describe('ids with SQL or shell metacharacters are refused at the boundary', () => {
  let stack: TestStack;
  const good = uniqueId('secid');
  const dir = mkdtempSync(join(tmpdir(), 'optiinfra-secid-'));

  beforeAll(async () => {
    stack = await startTestStack();
    const file = join(dir, 'good.jsonl');
    writeFileSync(file, '');
    await upsertDeployment(stack.stores.db, { id: good, source: { type: 'jsonl', path: file }, sample_rate: 1 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = cliEnv(stack.config, {
      OPTIINFRA_HOME: join(dir, 'home'),
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

  const CLI_CASES: ReadonlyArray<[string, (bad: string) => string[]]> = [
    ['deployment add <id>', (bad) => ['deployment', 'add', bad, '--source-path', join(dir, 'good.jsonl')]],
    ['collect --deployment', (bad) => ['collect', '--deployment', bad, '--once']],
    ['gate --candidate', (bad) => ['gate', '--deployment', good, '--candidate', bad, '--baseline', 'v1']],
    ['scores --version', (bad) => ['scores', '--deployment', good, '--version', bad]],
  ];

  /** The CLI's `main` in this process (what `process.exit` gets), with what it writes to stderr. */
  async function cliInProcess(args: string[]): Promise<{ code: number; stderr: string }> {
    let stderr = '';
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    });
    try {
      const code = await main(['node', 'optiinfra', ...args]);
      return { code, stderr };
    } finally {
      spy.mockRestore();
    }
  }

  function expectRefused(label: string, r: { code: number; stdout?: string; stderr: string }) {
    expect(r.code, `${label}: ${r.stderr}`).toBe(3);
    expect(r.stderr, label).toMatch(ID_MESSAGE);
    expect(r.stderr, label).not.toMatch(/uid=\d+/); // `id` never ran in a shell
    expect(r.stdout ?? '', label).not.toMatch(/registered|triggered|started|uid=/);
  }

  it('(a) the CLI exits 3 with a clear message for every command and value', async () => {
    for (const [cmd, argv] of CLI_CASES) {
      for (const [what, bad] of BAD_ARGV) expectRefused(`${cmd} with ${what}`, await cliInProcess(argv(bad)));
    }
  });

  it('(a) real CLI processes exit 3 too, and nothing is stored or run', async () => {
    // One process per command (each is a full CLI start), the values taken in turn.
    const results = await Promise.all(
      CLI_CASES.map(async ([cmd, argv], i) => {
        const [what, bad] = BAD_ARGV[i % BAD_ARGV.length]!;
        return { label: `${cmd} with ${what}`, r: await cli(argv(bad)) };
      }),
    );
    for (const { label, r } of results) expectRefused(label, r);
    // Nothing reached PostgreSQL, ClickHouse or Temporal.
    const values = BAD_ARGV.map(([, v]) => v);
    const deps = await stack.stores.db.query('SELECT id FROM deployments WHERE id = ANY($1)', [values]);
    expect(deps.rows).toEqual([]);
    const db = stack.config.clickhouse.database;
    const tables = await stack.stores.ch.query<{ name: string }>(`SELECT name FROM system.tables WHERE database = ${sqlString(db)}`);
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['scores', 'interactions']));
    const started: string[] = [];
    for await (const w of stack.client.workflow.list({ query: `TaskQueue = '${stack.config.temporal.taskQueue}'` }))
      started.push(w.workflowId);
    expect(started).toEqual([]);
  }, 120_000);

  it('(b) collectionCycle and deployGate fail with a non-retryable InvalidInput and touch nothing', async () => {
    const q = stack.config.temporal.taskQueue;
    const starts: Array<{ label: string; handle: Promise<WorkflowHandle> }> = [];
    for (const [i, [what, bad]] of BAD_IDS.entries()) {
      starts.push({
        label: `collectionCycle deployment with ${what}`,
        handle: stack.client.workflow.start('collectionCycle', {
          taskQueue: q,
          workflowId: `sec/collect/${i}/${randomUUID()}`,
          args: [{ deployment: bad }],
        }),
      });
      for (const field of ['deployment', 'baselineVersion', 'candidateVersion'] as const) {
        const input = { deployment: good, baselineVersion: 'v1', candidateVersion: 'v2', [field]: bad };
        starts.push({
          label: `deployGate ${field} with ${what}`,
          handle: stack.client.workflow.start('deployGate', {
            taskQueue: q,
            workflowId: `sec/gate/${i}/${field}/${randomUUID()}`,
            args: [input],
          }),
        });
      }
    }
    await Promise.all(
      starts.map(async ({ label, handle }) => {
        const h = await handle;
        const err = await h.result().then(
          () => new Error(`${label}: completed`),
          (e: unknown) => e,
        );
        const f = rootFailure(err);
        expect(f.type, label).toBe('InvalidInput');
        expect(f.nonRetryable, label).toBe(true);
        expect(f.message, label).toMatch(ID_MESSAGE);
        expect(await sideEffectsOf(h), label).toEqual([]);
      }),
    );
    // Nothing was written for any of the values.
    const db = stack.config.clickhouse.database;
    const list = BAD_IDS.map(([, v]) => sqlString(v)).join(', ');
    const ch = await stack.stores.ch.query<{ n: number }>(
      `SELECT count() AS n FROM ${db}.interactions WHERE deployment IN (${list}) OR model_version IN (${list})`,
    );
    expect(Number(ch[0]!.n)).toBe(0);
    const values = BAD_IDS.map(([, v]) => v.replace(/\u0000/g, '')); // PostgreSQL text cannot hold NUL
    for (const [table, cond] of [
      ['collection_runs', 'deployment = ANY($1)'],
      ['gate_decisions', 'deployment = ANY($1) OR candidate_version = ANY($1) OR baseline_version = ANY($1)'],
      ['rollbacks', 'deployment = ANY($1) OR from_version = ANY($1) OR to_version = ANY($1)'],
      ['baselines', 'deployment = ANY($1) OR model_version = ANY($1)'],
    ]) {
      const r = await stack.stores.db.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${cond}`, [values]);
      expect(r.rows[0].n, table).toBe(0);
    }
    expect(await getCursor(stack.stores.db, good)).toBeNull();
  }, 120_000);

  it.each(BAD_IDS)('(c) sqlId throws SqlValueError for %s', (_what, bad) => {
    expect(() => sqlId(bad)).toThrow(SqlValueError);
    expect(() => sqlId(bad, 'deployment')).toThrow(/deployment '.*' is not a valid identifier/s);
    expect(() => sqlIdList(['ok-1', bad])).toThrow(SqlValueError);
    // The message quotes at most 64 characters of the value.
    const message = (() => {
      try {
        sqlId(bad);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(message.length).toBeLessThan(120);
  });

  /** A JSONL source whose records carry the bad values in id, deployment and model_version, around two good ones. */
  async function cycleOver(values: readonly string[], label: string, timeout = '60s'): Promise<{ deployment: string; r: CycleResult }> {
    const deployment = uniqueId(label);
    const file = join(dir, `${deployment}.jsonl`);
    const rec = (over: Record<string, string>, n: number) =>
      JSON.stringify({
        id: `${deployment}-${n}`,
        deployment,
        model_version: 'v1',
        timestamp: '2026-11-25T10:00:00Z',
        prompt: 'What is the capital of France?',
        response: 'Paris is the capital of France.',
        context: 'Paris is the capital and largest city of France.',
        ...over,
      });
    const lines = [rec({}, 0)];
    values.forEach((bad, i) => {
      lines.push(rec({ id: bad }, 100 + i), rec({ deployment: bad }, 200 + i), rec({ model_version: bad }, 300 + i));
    });
    lines.push(rec({}, 1));
    writeFileSync(file, lines.join('\n') + '\n');
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'jsonl', path: file }, sample_rate: 1 });
    const r = (await stack.client.workflow.execute('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `collect/${deployment}/records`,
      args: [{ deployment, checks: ['quality'] }],
      workflowExecutionTimeout: timeout,
    })) as CycleResult;
    return { deployment, r };
  }

  it('(d) source records carrying such ids are counted as bad records and not stored', async () => {
    const values = BAD_IDS.map(([, v]) => v).filter((v) => !v.includes('\u0000'));
    const { deployment, r } = await cycleOver(values, 'secrec');
    expect(r.fetched).toBe(2 + 3 * values.length);
    expect(r.bad).toBe(3 * values.length);
    expect(r.stored).toBe(2);
    expect(r.scored).toBe(2);
    for (const b of r.badSamples) expect(b.reason).toMatch(ID_MESSAGE);
    expect(await stack.stores.ch.countInteractions(deployment)).toBe(2);
    expect(await stack.stores.ch.countScores(deployment)).toBe(2);
    const runs = await stack.stores.db.query('SELECT bad, stored FROM collection_runs WHERE deployment = $1', [deployment]);
    expect(runs.rows).toEqual([{ bad: 3 * values.length, stored: 2 }]);
  }, 120_000);

  // A NUL byte in a bad record's id must not reach the jsonb bad-record samples (PostgreSQL
  // refuses "\u0000" there, which once kept the cycle retrying forever).
  it('(d) a record whose id holds a NUL byte is a bad record too, and the cycle completes', async () => {
    const { deployment, r } = await cycleOver(['\u0000', 'a\u0000b'], 'secnul', '20s');
    expect(r.bad).toBe(6);
    expect(r.stored).toBe(2);
    expect(await stack.stores.ch.countInteractions(deployment)).toBe(2);
  }, 120_000);
});
