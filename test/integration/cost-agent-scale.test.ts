/**
 * A 90-day FOCUS export of 100,000 rows through the cost agent on the real stack: the workflow
 * history holds findings and totals, never the rows (every payload under 256 KB), and no day
 * is dropped (the last day's spend spike is found, the spend total is the export's).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertInfraSource } from '../../activities/storage/postgres/agents.js';
import { createScratchDatabase } from '../../stack/postgres.js';
import type { AgentRunResult } from '../../workflows/agents/run-agent.js';
import { startTestStack, testConfig, testEnv, type TestStack } from '../helpers/env.js';

const DAYS = 90;
const RESOURCES = 47;
const START = Date.parse('2025-03-01T00:00:00Z');
const HOUR = 3_600_000;
const HEADER =
  'BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,BilledCost,EffectiveCost,ListCost,ConsumedQuantity,ConsumedUnit,RegionId,ResourceId,ResourceType,ServiceName,SkuId,Tags';

/**
 * RESOURCES VMs with hourly rows on two SKUs each (101,520 rows, 8,460 daily rows after
 * aggregation, more than any per-row limit); on the last day one VM's hourly cost is ten times
 * its usual (a spike only visible if that day is read).
 */
function writeExport(dir: string): { rows: number; total: number } {
  let rows = 0;
  let total = 0;
  const lines: string[] = [HEADER];
  for (let day = 0; day < DAYS; day++) {
    for (let r = 0; r < RESOURCES; r++) {
      for (let h = 0; h < 24; h++) {
        const start = START + day * 24 * HOUR + h * HOUR;
        const base = 0.5 + (r % 7) * 0.25;
        const cost = day === DAYS - 1 && r === 3 ? base * 10 : base;
        total += cost;
        rows++;
        lines.push(
          [
            'USD',
            'Usage',
            new Date(start).toISOString(),
            new Date(start + HOUR).toISOString(),
            cost.toFixed(4),
            cost.toFixed(4),
            cost.toFixed(4),
            '1',
            'Hour',
            'region-1',
            `vm-${r}`,
            'VirtualMachine',
            `Compute ${r % 5}`,
            `sku-${r}-${h % 2}`,
            '"{""deployment"":""fleet""}"',
          ].join(','),
        );
      }
    }
  }
  writeFileSync(join(dir, 'export.csv'), `${lines.join('\n')}\n`);
  return { rows, total };
}

/** Size in bytes of every payload in one history event (inputs, results, details, memo...). */
function largestPayload(history: unknown): number {
  let max = 0;
  const walk = (v: unknown) => {
    if (!v || typeof v !== 'object') return;
    if (Array.isArray(v)) return v.forEach(walk);
    const o = v as Record<string, unknown>;
    if (o.data instanceof Uint8Array && o.metadata) max = Math.max(max, o.data.length);
    for (const x of Object.values(o)) walk(x);
  };
  walk(history);
  return max;
}

describe('cost agent on a 100,000-row FOCUS export', () => {
  let stack: TestStack;
  let exported: { rows: number; total: number };
  const drops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    const name = `optiinfra_cost_${randomUUID().slice(0, 8)}`;
    const db = await createScratchDatabase(testEnv().databaseUrl, name);
    const config = testConfig({ DATABASE_URL: db.url, CLICKHOUSE_DATABASE: name });
    drops.push(db.drop, async () => {
      await (
        await fetch(`${config.clickhouse.url}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${name}`)}`, { method: 'POST' })
      ).text();
    });
    stack = await startTestStack(config);
    const dir = mkdtempSync(join(tmpdir(), 'optiinfra-focus-'));
    exported = writeExport(dir);
    await upsertInfraSource(stack.stores.db, 'big-focus', { kind: 'focus', path: dir });
  }, 240_000);

  afterAll(async () => {
    await stack?.stop();
    for (const drop of drops) await drop().catch(() => undefined);
  });

  it('keeps rows out of history and drops no day', async () => {
    expect(exported.rows).toBeGreaterThanOrEqual(100_000);
    const workflowId = `cost-scale/${randomUUID().slice(0, 8)}`;
    const r = (await stack.client.workflow.execute('costAgent', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      args: [{ from: new Date(START).toISOString(), to: new Date(START + DAYS * 24 * HOUR).toISOString() }],
    })) as AgentRunResult;
    expect(r.status).toBe('ok');
    expect(r.totals?.days).toBe(DAYS);
    expect(r.totals?.spendUsd).toBeCloseTo(exported.total, 0);
    const spike = r.findings.find((f) => f.kind === 'spend-anomaly');
    expect(spike, JSON.stringify(r.findings.map((f) => f.title))).toBeDefined();
    expect(String(spike!.evidence.day ?? spike!.title)).toContain('2025-05-29');

    const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
    const largest = largestPayload(history);
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(256 * 1024);
  }, 300_000);
});
