import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../stack/sim/collector-simulator.js';
import { getCursor, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { isPgliteUrl, migrate } from '../../activities/storage/postgres/db.js';
import { MIGRATIONS } from '../../activities/storage/postgres/migrations.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { startTestStack, testConfig, testEnv, uniqueId, type TestStack } from '../helpers/env.js';

describe('the embedded PGlite fallback (no PostgreSQL server programs)', () => {
  let stack: TestStack;
  let sim: Simulator;
  const deployment = uniqueId('lite');

  beforeAll(async () => {
    const url = testEnv().pgliteUrl;
    expect(url).toBeTruthy();
    stack = await startTestStack(testConfig({ DATABASE_URL: url }));
    sim = await startSimulator({ deployment, modelVersion: 'v1', degradedShare: 0.5 });
    await upsertDeployment(stack.stores.db, { id: deployment, source: { type: 'http', url: sim.url }, sample_rate: 1 });
  });
  afterAll(async () => {
    await sim?.close();
    await stack?.stop();
  });

  it('applies migrations once and runs a full cycle with the same pg code, on one connection', async () => {
    // The stack's PGlite URL is marked, so the product's pool keeps a single connection.
    expect(isPgliteUrl(testEnv().pgliteUrl!)).toBe(true);
    expect(stack.stores.db.options.max).toBe(1);
    expect(await migrate(stack.stores.db)).toEqual([]); // already applied by openStores
    const versions = await stack.stores.db.query('SELECT version FROM schema_migrations ORDER BY version');
    expect(versions.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    sim.generate(20);
    const r = (await stack.client.workflow.execute('collectionCycle', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId: `collect/${deployment}/pglite`,
      args: [{ deployment }],
    })) as CycleResult;
    expect(r).toMatchObject({ stored: 20, scored: 60, failed: 0 });
    expect(await getCursor(stack.stores.db, deployment)).toBe(r.cursor);
    const run = await stack.stores.db.query('SELECT stored FROM collection_runs WHERE cycle_id = $1', [`collect/${deployment}/pglite`]);
    expect(run.rows).toEqual([{ stored: 20 }]);
  });
});
