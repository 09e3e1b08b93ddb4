import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFocusDirectory } from '../../activities/infra/focus.js';
import { formatUsd } from '../../common/format.js';
import type { CostRow, Finding, InstanceType, ResourceUtilisation } from '../../domain/agents/types.js';
import { compactCostRows } from '../../domain/agents/cost/compact-rows.js';
import { executiveSummary } from '../../domain/agents/cost/executive-summary.js';
import { costFindings, type CostFindingsInput } from '../../domain/agents/cost/findings.js';
import { rightSizeTarget } from '../../domain/agents/cost/resource-savings.js';
import { severityForUsd } from '../../domain/agents/cost/rules.js';
import { HOURS_PER_MONTH, INSTANCE_TYPES, findInstanceType } from '../../domain/agents/instance-catalog.js';
import {
  generateFocusDataset,
  generateFocusFiles,
  scenarioTokens,
  scenarioUtilisation,
  scenarioWindow,
  writeFocusDataset,
} from '../../stack/sim/focus-generator.js';

const DAY_MS = 86_400_000;
const START = Date.parse('2025-06-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

/** Daily FOCUS rows for one resource. */
function dailyRows(o: {
  resourceId: string;
  days: number;
  costPerDay: number | ((day: number) => number);
  service?: string;
  tags?: Record<string, string>;
}): CostRow[] {
  return Array.from({ length: o.days }, (_, day) => {
    const cost = typeof o.costPerDay === 'number' ? o.costPerDay : o.costPerDay(day);
    return {
      chargePeriodStart: iso(START + day * DAY_MS),
      chargePeriodEnd: iso(START + (day + 1) * DAY_MS),
      billedCost: cost,
      effectiveCost: cost,
      resourceId: o.resourceId,
      resourceType: 'Virtual Machine',
      serviceName: o.service ?? 'Virtual Machines',
      regionId: 'us-east-1',
      skuId: 'SKU',
      consumedQuantity: 24,
      consumedUnit: 'Hours',
      tags: o.tags ?? {},
    };
  });
}

const windowOf = (days: number) => ({ from: iso(START), to: iso(START + days * DAY_MS) });
const util = (resourceId: string, u: Partial<ResourceUtilisation>): ResourceUtilisation => ({
  resourceId,
  meanUtilisation: 0.5,
  idleShare: 0,
  p95Utilisation: 0.7,
  samples: 8640,
  ...u,
});
const input = (o: Partial<CostFindingsInput> & { rows: CostRow[] }): CostFindingsInput => ({
  utilisation: [],
  catalog: INSTANCE_TYPES,
  tokensByDeployment: {},
  window: windowOf(30),
  ...o,
});
const byKind = (findings: Finding[], kind: string) => findings.filter((f) => f.kind === kind);
const type = (name: string) => findInstanceType(INSTANCE_TYPES, name)!;

describe('instance catalog', () => {
  it('has the seed example entry at $52 a month and the required GPU types', () => {
    expect(HOURS_PER_MONTH).toBe(730);
    expect(type('gen.large').hourlyUsd * HOURS_PER_MONTH).toBeCloseTo(52, 10);
    expect(type('gen.large').family).toBe('general');
    const gpus = INSTANCE_TYPES.filter((t) => t.family === 'gpu').map((t) => `${t.gpus}x${t.gpuMemoryGiB / t.gpus}`);
    expect(gpus).toEqual(expect.arrayContaining(['1x24', '1x80', '4x80']));
    for (const f of ['general', 'compute', 'memory', 'gpu']) expect(INSTANCE_TYPES.some((t) => t.family === f)).toBe(true);
    expect(new Set(INSTANCE_TYPES.map((t) => t.name)).size).toBe(INSTANCE_TYPES.length);
  });
});

describe('costFindings: the seed example', () => {
  // An instance idle 95 % of the time that costs $52 a month (gen.large, 30 days of daily rows).
  const rows = dailyRows({
    resourceId: 'i-idle-reporting',
    days: 30,
    costPerDay: (24 * 52) / HOURS_PER_MONTH,
    tags: { instance_type: 'gen.large' },
  });
  const result = costFindings(
    input({ rows, utilisation: [util('i-idle-reporting', { idleShare: 0.95, meanUtilisation: 0.03, p95Utilisation: 0.12 })] }),
  );

  it('is $624 annual waste, $52 a month', () => {
    const [idle] = byKind(result.findings, 'idle-resource');
    expect(idle).toBeDefined();
    expect(idle!.title).toContain('$624 annual waste');
    expect(idle!.title).toContain('idle 95 %');
    expect(idle!.annualSavingUsd).toBe(624);
    expect(idle!.monthlySavingUsd).toBe(52);
    expect(idle!.evidence.monthly_cost_usd).toBe(52);
    expect(idle!.evidence.annual_waste_usd).toBe(624);
    expect(idle!.evidence.idle_share_pct).toBe(95);
    expect(idle!.recommendation).toMatch(/^Stop i-idle-reporting or put it on a schedule/);
    expect(idle!.recommendation).toContain('downsize it from gen.large to gen.small');
    expect(idle!.recommendation).toContain('shutting it down saves more');
    expect(idle!.severity).toBe('low');
    expect(idle!.confidence).toBeGreaterThanOrEqual(0.9);
    expect(result.totals.wasteAnnualUsd).toBe(624);
  });

  it('also has the downsizing saving: gen.large → gen.small, $37.40 a month, $448.80 a year', () => {
    const [rs] = byKind(result.findings, 'right-size');
    expect(rs).toBeDefined();
    expect(rs!.subject).toBe('i-idle-reporting');
    expect(rs!.evidence.recommended_type).toBe('gen.small');
    // (52/730 − 0.02) × 730 = 37.40 a month; × 12 = 448.80 a year.
    expect(rs!.monthlySavingUsd).toBe(37.4);
    expect(rs!.annualSavingUsd).toBe(448.8);
    expect(rs!.title).toContain('$448.80 a year');
    expect(rs!.recommendation).toContain('saves more');
    // Each resource counts once in the savings total: the larger of stopping and downsizing.
    expect(result.totals.savingsAnnualUsd).toBe(624);
  });

  it('totals: spend, monthly and annual run rate', () => {
    expect(result.totals.spendUsd).toBeCloseTo(51.29, 2);
    expect(result.totals.monthlyRunRateUsd).toBe(52);
    expect(result.totals.annualRunRateUsd).toBe(624);
  });

  it('has less confidence with few days of data', () => {
    const short = costFindings(
      input({
        rows: rows.slice(0, 3),
        window: windowOf(3),
        utilisation: [util('i-idle-reporting', { idleShare: 0.95, p95Utilisation: 0.12, samples: 864 })],
      }),
    );
    const [idle] = byKind(short.findings, 'idle-resource');
    expect(idle!.annualSavingUsd).toBe(624); // the same monthly rate
    expect(idle!.confidence).toBeLessThan(byKind(result.findings, 'idle-resource')[0]!.confidence);
  });
});

describe('costFindings: right-sizing', () => {
  it('picks the cheapest type of the same family that holds p95 × 1.3', () => {
    // mem.2xlarge (8 vCPU, 64 GiB) at p95 30 %: needs 3.12 vCPU and 24.96 GiB → mem.xlarge (4, 32).
    expect(rightSizeTarget(type('mem.2xlarge'), 0.3, INSTANCE_TYPES)?.target.name).toBe('mem.xlarge');
    // At p95 15 %: 1.56 vCPU, 12.48 GiB → mem.large (2, 16).
    expect(rightSizeTarget(type('mem.2xlarge'), 0.15, INSTANCE_TYPES)?.target.name).toBe('mem.large');
    // 4×A100 at p95 20 %: 83.2 GiB GPU memory → 2×A100 (160 GiB); 1×A100 (80) and 1×H100 (80) do not fit.
    expect(rightSizeTarget(type('gpu.4xa100-80g'), 0.2, INSTANCE_TYPES)?.target.name).toBe('gpu.2xa100-80g');
    // 1×A100 at p95 15 %: 15.6 GiB → the cheapest GPU with ≥ 15.6 GiB is the T4 (16 GiB).
    expect(rightSizeTarget(type('gpu.1xa100-80g'), 0.15, INSTANCE_TYPES)?.target.name).toBe('gpu.1xt4-16g');
    // Nothing cheaper fits: no target.
    expect(rightSizeTarget(type('gen.nano'), 0.1, INSTANCE_TYPES)).toBeUndefined();
  });

  it('ignores other families and dearer types, and prefers the cheapest fitting one', () => {
    const catalog: InstanceType[] = [
      { name: 'big', family: 'memory', hourlyUsd: 1, vcpus: 8, memoryGiB: 64, gpus: 0, gpuMemoryGiB: 0 },
      { name: 'fits-dear', family: 'memory', hourlyUsd: 0.8, vcpus: 8, memoryGiB: 32, gpus: 0, gpuMemoryGiB: 0 },
      { name: 'fits-cheap', family: 'memory', hourlyUsd: 0.5, vcpus: 4, memoryGiB: 32, gpus: 0, gpuMemoryGiB: 0 },
      { name: 'too-small', family: 'memory', hourlyUsd: 0.2, vcpus: 2, memoryGiB: 16, gpus: 0, gpuMemoryGiB: 0 },
      { name: 'other-family', family: 'general', hourlyUsd: 0.1, vcpus: 16, memoryGiB: 128, gpus: 0, gpuMemoryGiB: 0 },
    ];
    const rows = dailyRows({ resourceId: 'db-1', days: 30, costPerDay: 24, tags: { instance_type: 'big' } });
    const r = costFindings(input({ rows, catalog, utilisation: [util('db-1', { p95Utilisation: 0.3, idleShare: 0.1 })] }));
    const [rs] = byKind(r.findings, 'right-size');
    expect(rs!.evidence.recommended_type).toBe('fits-cheap');
    expect(rs!.monthlySavingUsd).toBe(365); // (1 − 0.5) × 730
    expect(rs!.annualSavingUsd).toBe(4380);
    expect(rs!.severity).toBe('medium');
    expect(byKind(r.findings, 'idle-resource')).toHaveLength(0);
    expect(r.totals.savingsAnnualUsd).toBe(4380);
  });

  it('gives the catalog saving for an under-used GPU node', () => {
    const rows = dailyRows({ resourceId: 'gpu-9', days: 30, costPerDay: 24 * 14.68, tags: { instance_type: 'gpu.4xa100-80g' } });
    const r = costFindings(input({ rows, utilisation: [util('gpu-9', { p95Utilisation: 0.2, meanUtilisation: 0.1, idleShare: 0.4 })] }));
    const [rs] = byKind(r.findings, 'right-size');
    expect(rs!.title).toBe('Downsize gpu-9 from gpu.4xa100-80g to gpu.2xa100-80g: saves $5,358.20 a month ($64,298.40 a year)');
    expect(rs!.evidence.required_gpu_memory_gib).toBe(83.2);
    expect(rs!.severity).toBe('high');
    expect(rs!.recommendation).toContain("check that the model's weights and KV cache fit in 160 GiB");
  });

  it('leaves well-used resources and unknown instance types alone', () => {
    const rows = [
      ...dailyRows({ resourceId: 'busy', days: 30, costPerDay: 24 * 0.34, tags: { instance_type: 'cpu.2xlarge' } }),
      ...dailyRows({ resourceId: 'unknown', days: 30, costPerDay: 10, tags: { instance_type: 'xyz.huge' } }),
    ];
    const r = costFindings(
      input({ rows, utilisation: [util('busy', { p95Utilisation: 0.55 }), util('unknown', { p95Utilisation: 0.1, idleShare: 0.2 })] }),
    );
    expect(byKind(r.findings, 'right-size')).toHaveLength(0);
    expect(byKind(r.findings, 'idle-resource')).toHaveLength(0);
    expect(r.totals.savingsAnnualUsd).toBe(0);
  });
});

describe('costFindings: cost per million tokens', () => {
  const rows = [
    ...dailyRows({ resourceId: 'a-1', days: 10, costPerDay: 10, tags: { deployment: 'alpha' } }), // $100
    ...dailyRows({ resourceId: 'b-1', days: 10, costPerDay: 3, tags: { deployment: 'beta' } }), // $30
    ...dailyRows({ resourceId: 'c-1', days: 10, costPerDay: 5.8, tags: { deployment: 'gamma' } }), // $58
  ];
  const r = costFindings(
    input({ rows, window: windowOf(10), tokensByDeployment: { alpha: 10_000_000, beta: 20_000_000, gamma: 20_000_000 } }),
  );
  const of = (d: string) => byKind(r.findings, 'cost-per-token').find((f) => f.subject === d)!;

  it('computes cost per million tokens per deployment', () => {
    expect(of('alpha').evidence.cost_per_million_tokens_usd).toBe(10);
    expect(of('beta').evidence.cost_per_million_tokens_usd).toBe(1.5);
    expect(of('gamma').evidence.cost_per_million_tokens_usd).toBe(2.9);
    expect(of('alpha').evidence.tokens_served).toBe(10_000_000);
  });

  it('flags deployments at ≥ 2× the cheapest, with the excess', () => {
    const alpha = of('alpha');
    expect(alpha.title).toBe('alpha costs $10.00 per million tokens, 6.7× beta ($1.50)');
    expect(alpha.evidence.ratio_to_cheapest).toBe(6.67);
    // Excess: $100 − 1.5 × 10 = $85 in 240 h → 85 / 240 × 730 = 258.54 a month, 3102.48 a year.
    expect(alpha.evidence.excess_monthly_usd).toBe(258.54);
    expect(alpha.evidence.excess_annual_usd).toBe(3102.48);
    expect(alpha.severity).toBe('medium');
    // gamma at 1.93× is not flagged; beta is the reference.
    expect(of('gamma').severity).toBe('info');
    expect(of('beta').severity).toBe('info');
    expect(of('beta').recommendation).toContain('lowest unit cost');
  });

  it('reports a deployment that cost money but served no recorded tokens', () => {
    const r2 = costFindings(input({ rows, window: windowOf(10), tokensByDeployment: { beta: 20_000_000 } }));
    const alpha = byKind(r2.findings, 'cost-per-token').find((f) => f.subject === 'alpha')!;
    expect(alpha.title).toBe('alpha cost $100 but no tokens served were recorded');
    expect(alpha.evidence.tokens_served).toBe(0);
  });
});

describe('costFindings: spend anomalies', () => {
  // Storage spend around $100/day with a fixed small wobble; day 10 spikes to $300.
  const wobble = [0, 3, -2, 4, -3, 1, -1, 2, -4, 3, 0, 2, -2, 1];
  const base = (day: number) => 100 + wobble[day % wobble.length]!;

  it('flags a day above trailing mean + 3 sd (and +20 %) with the numbers', () => {
    const rows = dailyRows({ resourceId: 'bucket', service: 'Object Storage', days: 14, costPerDay: (d) => (d === 10 ? 300 : base(d)) });
    const r = costFindings(input({ rows, window: windowOf(14) }));
    const anomalies = byKind(r.findings, 'spend-anomaly');
    expect(anomalies).toHaveLength(1);
    const a = anomalies[0]!;
    expect(a.subject).toBe('Object Storage 2025-06-11');
    // Trailing days 3..9: 104, 97, 101, 99, 102, 96, 103 → mean 100.29, sample sd 3.04.
    expect(a.evidence.spend_usd).toBe(300);
    expect(a.evidence.trailing_mean_usd).toBe(100.29);
    expect(a.evidence.trailing_sd_usd).toBe(3.04);
    expect(a.evidence.excess_usd).toBe(199.71);
    expect(a.evidence.trailing_days).toBe(7);
    expect(a.evidence.top_resource).toBe('bucket');
    expect(a.title).toContain('$300');
    expect(a.severity).toBe('low');
  });

  it('raises no alarm on flat or weekly-rhythm spend', () => {
    const flat = costFindings(input({ rows: dailyRows({ resourceId: 'x', days: 30, costPerDay: 100 }) }));
    expect(byKind(flat.findings, 'spend-anomaly')).toHaveLength(0);
    const wobbly = costFindings(input({ rows: dailyRows({ resourceId: 'x', days: 30, costPerDay: base }) }));
    expect(byKind(wobbly.findings, 'spend-anomaly')).toHaveLength(0);
    // Weekdays $100, weekends $40 (2025-06-01 is a Sunday).
    const weekly = costFindings(
      input({ rows: dailyRows({ resourceId: 'x', days: 30, costPerDay: (d) => (d % 7 === 0 || d % 7 === 6 ? 40 : 100) }) }),
    );
    expect(byKind(weekly.findings, 'spend-anomaly')).toHaveLength(0);
  });

  it('needs a rise of 20 % as well as 3 sd, and honours trailingDays', () => {
    // Perfectly flat then +10 %: beyond 3 sd (sd = 0) but not +20 %.
    const small = costFindings(
      input({ rows: dailyRows({ resourceId: 'x', days: 20, costPerDay: (d) => (d === 15 ? 110 : 100) }), window: windowOf(20) }),
    );
    expect(byKind(small.findings, 'spend-anomaly')).toHaveLength(0);
    // A spike on day 5 is invisible with 7 trailing days, visible with 3.
    const rows = dailyRows({ resourceId: 'x', days: 10, costPerDay: (d) => (d === 5 ? 200 : 100) });
    expect(byKind(costFindings(input({ rows, window: windowOf(10) })).findings, 'spend-anomaly')).toHaveLength(0);
    const three = byKind(costFindings(input({ rows, window: windowOf(10), trailingDays: 3 })).findings, 'spend-anomaly');
    expect(three.map((f) => f.evidence.date)).toEqual(['2025-06-06']);
  });
});

describe('executiveSummary', () => {
  it('states run rate, waste, top savings and what to do first', () => {
    const rows = [
      ...dailyRows({ resourceId: 'i-idle-reporting', days: 30, costPerDay: (24 * 52) / 730, tags: { instance_type: 'gen.large' } }),
      ...dailyRows({ resourceId: 'gpu-9', days: 30, costPerDay: 24 * 14.68, tags: { instance_type: 'gpu.4xa100-80g' } }),
    ];
    const r = costFindings(
      input({
        rows,
        utilisation: [
          util('i-idle-reporting', { idleShare: 0.95, p95Utilisation: 0.12 }),
          util('gpu-9', { p95Utilisation: 0.2, idleShare: 0.4 }),
        ],
      }),
    );
    const text = executiveSummary(r.findings, r.totals);
    expect(text).toContain(formatUsd(r.totals.spendUsd));
    expect(text).toContain(`${formatUsd(r.totals.monthlyRunRateUsd)} a month`);
    expect(text).toContain(`${formatUsd(r.totals.annualRunRateUsd)} a year`);
    expect(text).toContain('Idle resources waste $624 a year (i-idle-reporting)');
    expect(text).toContain(`saves ${formatUsd(r.totals.savingsAnnualUsd)} a year`);
    expect(r.totals.savingsAnnualUsd).toBe(64_922.4); // 64,298.40 + 624
    expect(text).toContain('Do first: move gpu-9 from gpu.4xa100-80g to gpu.2xa100-80g, worth $64,298.40 a year.');
    const sentences = text.split(/(?<=\.) (?=[A-Z])/);
    expect(sentences.length).toBeGreaterThanOrEqual(3);
    expect(sentences.length).toBeLessThanOrEqual(5);
  });

  it('works with no findings', () => {
    const r = costFindings(input({ rows: dailyRows({ resourceId: 'x', days: 30, costPerDay: 10 }) }));
    expect(r.findings).toHaveLength(0);
    const text = executiveSummary(r.findings, r.totals);
    expect(text).toContain('$300');
    expect(text).toContain('No idle resources were found.');
  });
});

describe('helpers', () => {
  it('formats dollars and grades severity by money at stake', () => {
    expect(formatUsd(624)).toBe('$624');
    expect(formatUsd(37.4)).toBe('$37.40');
    expect(formatUsd(28119.6)).toBe('$28,119.60');
    expect(formatUsd(1234567)).toBe('$1,234,567');
    expect(formatUsd(51.999999)).toBe('$52');
    expect([50, 100, 1000, 10_000].map(severityForUsd)).toEqual(['info', 'low', 'medium', 'high']);
  });

  it('ignores rows outside the window and rejects a bad window', () => {
    const rows = dailyRows({ resourceId: 'x', days: 40, costPerDay: 10 });
    expect(costFindings(input({ rows })).totals.spendUsd).toBe(300);
    expect(() => costFindings(input({ rows, window: { from: 'x', to: 'y' } }))).toThrow(/invalid cost window/);
    expect(costFindings(input({ rows: [] })).totals).toEqual({
      spendUsd: 0,
      monthlyRunRateUsd: 0,
      annualRunRateUsd: 0,
      wasteAnnualUsd: 0,
      savingsAnnualUsd: 0,
    });
  });
});

describe('generate-focus: the seed scenario', () => {
  const opts = { days: 30, seed: 1, start: '2025-06-01', scenario: 'seed' } as const;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'focus-gen-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is deterministic per seed', () => {
    const a = generateFocusDataset(opts);
    expect(generateFocusDataset(opts)).toBe(a);
    expect(generateFocusDataset({ ...opts, seed: 2 })).not.toBe(a);
    expect(a.split('\n')[0]).toContain('BilledCost');
  });

  it('writes one file per month', () => {
    expect(generateFocusFiles({ ...opts, days: 45 }).map((f) => f.name)).toEqual(['focus-2025-06.csv', 'focus-2025-07.csv']);
  });

  it('round-trips through readFocusDirectory and reproduces the seed example', async () => {
    const files = writeFocusDataset(dir, opts);
    expect(files.map((f) => path.basename(f))).toEqual(['focus-2025-06.csv']);
    const read = await readFocusDirectory(dir);
    expect(read.bad).toEqual([]);
    expect(read.files).toEqual(files);
    // The single-file text and the monthly files hold the same rows.
    expect(read.rows.length).toBe(generateFocusDataset(opts).trim().split('\n').length - 1);
    const idleRows = read.rows.filter((r) => r.resourceId === 'i-idle-reporting');
    expect(idleRows).toHaveLength(30 * 24);
    expect(idleRows[0]!.tags.instance_type).toBe('gen.large');

    const r = costFindings({
      rows: read.rows,
      utilisation: scenarioUtilisation(),
      catalog: INSTANCE_TYPES,
      tokensByDeployment: scenarioTokens(opts.days),
      window: scenarioWindow(opts),
    });
    const idle = byKind(r.findings, 'idle-resource');
    expect(idle).toHaveLength(1);
    expect(idle[0]!.subject).toBe('i-idle-reporting');
    expect(idle[0]!.title).toContain('$624 annual waste');
    expect(idle[0]!.annualSavingUsd).toBe(624);
    expect(idle[0]!.monthlySavingUsd).toBe(52);

    const rs = byKind(r.findings, 'right-size');
    const idleRs = rs.find((f) => f.subject === 'i-idle-reporting')!;
    expect(idleRs.annualSavingUsd).toBe(448.8);
    // batch-api's H100 at p95 28 % → 1×A100 80 GiB: (6.88 − 3.67) × 730 = 2,343.30 a month.
    const gpuRs = rs.find((f) => f.subject === 'gpu-batch-1')!;
    expect(gpuRs.evidence.recommended_type).toBe('gpu.1xa100-80g');
    expect(gpuRs.monthlySavingUsd).toBe(2343.3);
    expect(gpuRs.annualSavingUsd).toBe(28_119.6);
    expect(rs.map((f) => f.subject).sort()).toEqual(['gpu-batch-1', 'i-idle-reporting']);

    const tokens = byKind(r.findings, 'cost-per-token');
    const batch = tokens.find((f) => f.subject === 'batch-api')!;
    expect(batch.severity).not.toBe('info');
    expect(batch.evidence.cheapest_deployment).toBe('chat-prod');
    expect(Number(batch.evidence.ratio_to_cheapest)).toBeGreaterThanOrEqual(2);
    // batch-api: 30 days × 24 h × $6.88 over 600 M tokens = $8.256 per million.
    expect(batch.evidence.cost_per_million_tokens_usd).toBe(8.256);

    const anomalies = byKind(r.findings, 'spend-anomaly');
    expect(anomalies.map((f) => f.subject)).toEqual(['Object Storage 2025-06-20']);
    expect(Number(anomalies[0]!.evidence.excess_usd)).toBeGreaterThan(400);

    expect(r.totals.wasteAnnualUsd).toBe(624);
    expect(r.totals.savingsAnnualUsd).toBe(28_743.6);
    const summary = executiveSummary(r.findings, r.totals);
    expect(summary).toContain('$624 a year');
    expect(summary).toContain('Do first: move gpu-batch-1 from gpu.1xh100-80g to gpu.1xa100-80g');

    // Compacted to daily rows (small enough for workflow history), the findings are the same.
    const compact = compactCostRows(read.rows);
    expect(compact.length).toBeLessThan(read.rows.length / 15);
    expect(JSON.stringify(compact).length).toBeLessThan(256 * 1024);
    const rc = costFindings({
      rows: compact,
      utilisation: scenarioUtilisation(),
      catalog: INSTANCE_TYPES,
      tokensByDeployment: scenarioTokens(opts.days),
      window: scenarioWindow(opts),
    });
    expect(rc).toEqual(r);
  });
});
