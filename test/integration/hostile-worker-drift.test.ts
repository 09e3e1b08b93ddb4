/**
 * Two workers on one task queue with different OPTIINFRA_WEBHOOK_SECRET values: each records
 * itself in PostgreSQL and warns about the other, `optiinfra workers` shows who differs, and no
 * secret or fingerprint is ever printed. Real PostgreSQL (a scratch database) and Temporal.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Db } from '../../activities/storage/postgres/db.js';
import { recentWorkers, secretFingerprint, watchWorkerDrift } from '../../activities/storage/postgres/workers.js';
import { openStores, type Stores } from '../../client/runtime.js';
import { createScratchDatabase } from '../../stack/postgres.js';
import { createWorkers } from '../../workers/worker.js';
import { runCli } from '../helpers/cli.js';
import { quietRuntime, testConfig, testEnv } from '../helpers/env.js';

const SECRET_A = 'drift-secret-aaaa-0001';
const SECRET_B = 'drift-secret-bbbb-0002';
const FORBIDDEN = [SECRET_A, SECRET_B, secretFingerprint(SECRET_A)!, secretFingerprint(SECRET_B)!];
const queue = `drift-${randomUUID().slice(0, 8)}`;
let stores: Stores;
let dbUrl: string;
let dir: string;
const cleanup: Array<() => Promise<void>> = [];

beforeAll(async () => {
  const db = await createScratchDatabase(testEnv().databaseUrl, `optiinfra_drift_${randomUUID().slice(0, 8)}`);
  dbUrl = db.url;
  cleanup.push(db.drop);
  stores = await openStores(testConfig({ DATABASE_URL: dbUrl }));
  cleanup.push(() => stores.close());
  dir = mkdtempSync(join(tmpdir(), 'optiinfra-drift-'));
});

afterAll(async () => {
  for (const c of [...cleanup].reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('workers of one task queue with different webhook secrets', () => {
  // Pins: a running worker records itself, warns (once) about the worker of its queue that signs
  // with another secret, keeps running, deletes rows unseen for a day, and removes its own row
  // when it stops; `optiinfra workers` lists both with "secret A"/"secret B" and the same warning.
  // No secret or fingerprint appears in any log line or output. Failed before: nothing recorded
  // or compared workers; a rollback run by the other worker was refused (401) without a word.
  it('each warns about the other; the listing shows who differs without a secret', async () => {
    await stores.db.query(
      `INSERT INTO workers (id, identity, task_queue, host, pid, started_at, last_seen, fingerprints)
       VALUES ('stale', 'old@gone', $1, 'gone', 1, now() - interval '3 days', now() - interval '2 days', '{}')`,
      [queue],
    );
    const w1Log: string[] = [];
    const config1 = testConfig({ DATABASE_URL: dbUrl, TEMPORAL_TASK_QUEUE: queue, OPTIINFRA_WEBHOOK_SECRET: SECRET_A });
    const w1 = watchWorkerDrift(stores.db, config1, 'w1@hostA', { log: (l) => w1Log.push(l), everyMs: 200 });
    cleanup.push(() => w1.stop());
    await w1.first;
    expect(w1Log).toEqual([]);
    expect((await stores.db.query(`SELECT id FROM workers WHERE id = 'stale'`)).rowCount).toBe(0);

    // The second one through the worker start-up itself.
    quietRuntime();
    const warned: string[] = [];
    const spy = vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => {
      const l = a.join(' ');
      if (l.startsWith('warning: worker')) warned.push(l);
    });
    const config2 = testConfig({ DATABASE_URL: dbUrl, TEMPORAL_TASK_QUEUE: queue, OPTIINFRA_WEBHOOK_SECRET: SECRET_B });
    const connection = await NativeConnection.connect({ address: config2.temporal.address });
    const set = await createWorkers(
      config2,
      connection,
      { config: config2, ch: stores.ch, db: stores.db },
      { identity: 'w2@hostB', workflowBundle: { codePath: testEnv().bundlePath } },
    );
    const running = set.run();
    try {
      await vi.waitFor(() => expect(warned.join('\n')).toContain('OPTIINFRA_WEBHOOK_SECRET'), { timeout: 20_000, interval: 100 });
      await vi.waitFor(() => expect(w1Log).toHaveLength(1), { timeout: 5000, interval: 100 });
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatch(
        /^warning: worker w1@hostA \(host .+\) on task queue 'drift-\w+' signs rollbacks and notifications with a different OPTIINFRA_WEBHOOK_SECRET than w2@hostB: a rollback it delivers may be refused \(401\); give every worker the same secret$/,
      );
      expect(w1Log[0]).toContain(`worker w2@hostB (host `);
      expect(w1Log[0]).toContain('different OPTIINFRA_WEBHOOK_SECRET than w1@hostA');
      // Refreshed several times since, still one warning each, and the worker still runs.
      await new Promise((r) => setTimeout(r, 700));
      expect(w1Log).toHaveLength(1);
      expect(set.workers.every((w) => w.getState() === 'RUNNING')).toBe(true);

      const env = {
        DATABASE_URL: dbUrl,
        CLICKHOUSE_URL: testEnv().clickhouseUrl,
        CLICKHOUSE_DATABASE: testEnv().clickhouseDatabase,
        OPTIINFRA_HOME: dir,
      };
      const text = await runCli(['workers'], env);
      expect(text.code, text.out).toBe(0);
      const line = (id: string) => text.out.split('\n').find((l) => l.startsWith(id)) ?? '';
      expect(line('w1@hostA')).toContain('secret A');
      expect(line('w2@hostB')).toContain('secret B');
      expect(line('w2@hostB')).toContain('offline');
      expect(text.out).toContain(`worker w2@hostB`);
      expect(text.out).toContain('different OPTIINFRA_WEBHOOK_SECRET than w1@hostA');
      const json = await runCli(['workers', '--json'], env);
      expect(json.code, json.out).toBe(0);
      const parsed = JSON.parse(json.out) as { workers: Array<Record<string, string>>; warnings: string[] };
      expect(parsed.workers.map((w) => [w.identity, w.webhook_secret, w.encryption_keys])).toEqual([
        ['w1@hostA', 'secret A', 'unset'],
        ['w2@hostB', 'secret B', 'unset'],
      ]);
      expect(parsed.warnings).toHaveLength(1);
      for (const s of FORBIDDEN) for (const out of [...warned, ...w1Log, text.out, json.out]) expect(out).not.toContain(s);
    } finally {
      spy.mockRestore();
      set.shutdown();
      await running.catch(() => undefined);
      await connection.close();
    }
    expect((await recentWorkers(stores.db, queue)).map((w) => w.identity)).toEqual(['w1@hostA']);
  });

  // Pins: PostgreSQL failing when a worker records itself is logged (credentials redacted) and
  // retried at the next refresh, never thrown. Failed before: there was no record to retry.
  it('a failure to record is logged, not thrown, and retried', async () => {
    let failures = 1;
    const flaky = {
      query: (...a: Parameters<Db['query']>) => {
        if (failures-- > 0) return Promise.reject(new Error(`connect ECONNREFUSED postgres://u:${SECRET_A}@db/x`));
        return (stores.db.query as (...x: unknown[]) => Promise<unknown>)(...a);
      },
    } as unknown as Db;
    const log: string[] = [];
    const config = testConfig({ DATABASE_URL: dbUrl, OPTIINFRA_WEBHOOK_SECRET: SECRET_A });
    const w = watchWorkerDrift(flaky, config, 'w3@hostC', { log: (l) => log.push(l), everyMs: 100 });
    try {
      await w.first;
      expect(log).toHaveLength(1);
      expect(log[0]).toMatch(/^warning: could not record this worker in PostgreSQL \(connect ECONNREFUSED .*\); trying again in 0.1 s$/);
      for (const s of FORBIDDEN) expect(log[0]).not.toContain(s);
      await vi.waitFor(
        async () => expect((await recentWorkers(stores.db, config.temporal.taskQueue)).map((r) => r.identity)).toEqual(['w3@hostC']),
        {
          timeout: 5000,
          interval: 100,
        },
      );
    } finally {
      await w.stop();
    }
  });
});
