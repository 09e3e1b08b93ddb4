/**
 * The scheduled infrastructure collection (`collectInfra`) over a fleet scraped host by host, on
 * the real stack: 2,050 `/metrics` sources, one of them down, one whose stored configuration was
 * edited by hand. Bounds are asserted (collections at once, result size, runs), never times.
 * Pins, and how it failed before:
 * - every source was collected at once (2,052 activities scheduled in one workflow task);
 * - one source's stored configuration that no longer parsed failed the listing, so nothing was
 *   collected;
 * - every outcome was returned, so a large fleet with errors passed the 2 MB payload limit;
 * - one history held every source (three events each), toward Temporal's 51,200-event limit.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertInfraSource } from '../../activities/storage/postgres/agents.js';
import { MAX_LISTED_SOURCES, type InfraCollection } from '../../domain/infra/collection.js';
import { createScratchDatabase } from '../../stack/postgres.js';
import { SOURCES_IN_FLIGHT, SOURCES_PER_RUN } from '../../workflows/infra/collect-infra.js';
import { startTestStack, testConfig, testEnv, type TestStack } from '../helpers/env.js';
import { recordHistory } from '../helpers/histories.js';

const HOSTS = SOURCES_PER_RUN + 50;

describe('collectInfra over a fleet of 2,050 hosts', () => {
  let stack: TestStack;
  let server: http.Server;
  let open = 0;
  let maxOpen = 0;
  const drop: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    const name = `optiinfra_fanout_${randomUUID().slice(0, 8)}`;
    const db = await createScratchDatabase(testEnv().databaseUrl, name);
    const config = testConfig({ DATABASE_URL: db.url, CLICKHOUSE_DATABASE: name });
    drop.push(db.drop, async () => {
      await (
        await fetch(`${config.clickhouse.url}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${name}`)}`, { method: 'POST' })
      ).text();
    });
    server = http.createServer((_req, res) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      setTimeout(() => {
        open--;
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end('# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 2\n');
      }, 20);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    stack = await startTestStack(config);
    for (let i = 0; i < HOSTS; i++) await upsertInfraSource(stack.stores.db, `host-${String(i).padStart(5, '0')}`, { kind: 'scrape', url });
    await upsertInfraSource(stack.stores.db, 'host-down', { kind: 'scrape', url: 'http://127.0.0.1:1/metrics' });
    await upsertInfraSource(stack.stores.db, 'host-edited', { kind: 'scrape', url });
    await stack.stores.db.query(`UPDATE infra_sources SET config = '{"kind": "scrape", "url": "ftp://x"}' WHERE id = 'host-edited'`);
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    for (const d of drop) await d().catch(() => undefined);
  });

  it('collects every source a page at a time, continues as new, and returns a bounded result', async () => {
    const workflowId = `collect-infra/fanout-${randomUUID().slice(0, 6)}`;
    const handle = await stack.client.workflow.start('collectInfra', { taskQueue: stack.config.temporal.taskQueue, workflowId });
    const r = (await handle.result()) as InfraCollection;
    expect(r).toMatchObject({ sources: HOSTS + 2, rows: HOSTS, bad: 0, failed: 2, notListed: HOSTS + 2 - MAX_LISTED_SOURCES });
    expect(r.outcomes).toHaveLength(MAX_LISTED_SOURCES);
    expect(r.outcomes.slice(0, 2).map((o) => o.id)).toEqual(['host-down', 'host-edited']);
    expect(r.outcomes[0]!.error).toMatch(/127\.0\.0\.1:1/);
    expect(r.outcomes[1]!.error).toMatch(/stored configuration is invalid .*optiinfra infra add host-edited/);
    expect(JSON.stringify(r).length).toBeLessThan(60_000);
    expect(maxOpen).toBeGreaterThan(1);
    expect(maxOpen).toBeLessThanOrEqual(SOURCES_IN_FLIGHT);
    // Two runs: the first stopped after SOURCES_PER_RUN sources and carried its totals on.
    const first = await stack.client.workflow.getHandle(workflowId, handle.firstExecutionRunId).describe();
    expect(first.status.name).toBe('CONTINUED_AS_NEW');
    const last = await handle.describe();
    expect(last.runId).not.toBe(handle.firstExecutionRunId);
    const rows = await stack.stores.ch.query<{ n: string }>(`SELECT count() AS n FROM ${stack.config.clickhouse.database}.metric_samples`);
    expect(Number(rows[0]!.n)).toBe(HOSTS);
    // The last run (52 sources, resumed from the carry) keeps the recorded history small.
    await recordHistory(stack.client, workflowId, 'collect-infra-paged', last.runId);
  }, 600_000);
});
