/**
 * Generates a FinOps FOCUS 1.x cost-and-usage dataset for the cost agent's demo and tests.
 *
 *   npx tsx stack/sim/focus-generator.ts --out DIR [--days 30] [--seed 1] [--start 2025-06-01]
 *
 * writes one CSV per calendar month (`focus-YYYY-MM.csv`) into DIR.
 *
 * The 'seed' scenario (one region, provider "ExampleCloud", list prices from
 * domain/agents/instance-catalog.ts, on demand so BilledCost = EffectiveCost = ListCost):
 * - gpu-chat-prod-1, gpu-chat-prod-2: gpu.1xa100-80g, deployment chat-prod, always on, busy;
 * - gpu-chat-prod-3: gpu.1xa100-80g, chat-prod's peak node, on for 8-10 hours on weekdays
 *   (a seeded number of hours), which gives compute spend a realistic weekly rhythm;
 * - gpu-batch-1: gpu.1xh100-80g, deployment batch-api, always on, lightly used;
 * - i-idle-reporting: gen.large ($52.00 a month), always on, idle 95 % of the time;
 * - bucket-model-artifacts: object storage (GB-month) and internet egress with daily noise,
 *   and an egress spike (~5 TB) on day 20 (index 19) of the period.
 * VM rows are hourly; storage and egress rows are daily. Everything is deterministic: a seeded
 * PRNG (mulberry32), no clock. `scenarioUtilisation()` and `scenarioTokens()` give the
 * utilisation and tokens served that go with it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import type { ResourceUtilisation } from '../../domain/agents/types.js';
import { INSTANCE_TYPES } from '../../domain/agents/instance-catalog.js';
import { mulberry32 } from '../../common/random.js';

export interface FocusDatasetOptions {
  days: number;
  seed: number;
  /** First day, `YYYY-MM-DD` (UTC). */
  start: string;
  scenario: 'seed';
}

/** Header of the generated files: the FOCUS columns the cost agent needs plus common context. */
export const FOCUS_COLUMNS = [
  'BillingAccountId',
  'BillingCurrency',
  'BillingPeriodStart',
  'BillingPeriodEnd',
  'ChargeCategory',
  'ChargeDescription',
  'ChargePeriodStart',
  'ChargePeriodEnd',
  'BilledCost',
  'EffectiveCost',
  'ListCost',
  'ListUnitPrice',
  'PricingQuantity',
  'PricingUnit',
  'ConsumedQuantity',
  'ConsumedUnit',
  'ProviderName',
  'PublisherName',
  'InvoiceIssuerName',
  'RegionId',
  'RegionName',
  'ResourceId',
  'ResourceName',
  'ResourceType',
  'ServiceCategory',
  'ServiceName',
  'SkuId',
  'SkuPriceId',
  'Tags',
] as const;
type FocusColumn = (typeof FOCUS_COLUMNS)[number];
type FocusRecord = Record<FocusColumn, string>;

/** The seed scenario's resources, their catalog types and deployments. */
export const SEED_RESOURCES = [
  { resourceId: 'gpu-chat-prod-1', instanceType: 'gpu.1xa100-80g', deployment: 'chat-prod', schedule: 'always' },
  { resourceId: 'gpu-chat-prod-2', instanceType: 'gpu.1xa100-80g', deployment: 'chat-prod', schedule: 'always' },
  { resourceId: 'gpu-chat-prod-3', instanceType: 'gpu.1xa100-80g', deployment: 'chat-prod', schedule: 'weekday-peak' },
  { resourceId: 'gpu-batch-1', instanceType: 'gpu.1xh100-80g', deployment: 'batch-api', schedule: 'always' },
  { resourceId: 'i-idle-reporting', instanceType: 'gen.large', deployment: undefined, schedule: 'always' },
] as const;
export const SEED_BUCKET = 'bucket-model-artifacts';
/** Day index (0-based) of the egress spike, when the period is long enough to see it. */
export const SEED_SPIKE_DAY = 19;
const STORAGE_USD_PER_GB_MONTH = 0.023;
const EGRESS_USD_PER_GB = 0.09;
const REGION = { id: 'us-east-1', name: 'US East (N. Virginia)' };
const ACCOUNT = 'acct-000123456789';

/** The day of the egress spike for a period of `days` days, or undefined when too short to see it. */
export function seedSpikeDay(days: number): number | undefined {
  if (days < 9) return undefined;
  return Math.min(SEED_SPIKE_DAY, days - 2);
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

function parseStart(start: string): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(start)) throw new Error(`start must be YYYY-MM-DD, got '${start}'`);
  const ms = Date.parse(`${start}T00:00:00Z`);
  if (!Number.isFinite(ms)) throw new Error(`start '${start}' is not a valid date`);
  return ms;
}

function validate(opts: FocusDatasetOptions): number {
  if (!Number.isInteger(opts.days) || opts.days < 1 || opts.days > 3660)
    throw new Error(`days must be an integer 1-3660, got ${opts.days}`);
  if (!Number.isInteger(opts.seed)) throw new Error(`seed must be an integer, got ${opts.seed}`);
  if (opts.scenario !== 'seed') throw new Error(`unknown scenario '${String(opts.scenario)}'`);
  return parseStart(opts.start);
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** A cost as FOCUS exports write it: up to 10 decimals, no trailing zeros. */
function money(x: number): string {
  const s = x.toFixed(10).replace(/0+$/, '').replace(/\.$/, '');
  return s === '-0' ? '0' : s;
}

function billingPeriod(ms: number): { start: string; end: string; key: string } {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  return { start: iso(Date.UTC(y, m, 1)), end: iso(Date.UTC(y, m + 1, 1)), key: `${y}-${String(m + 1).padStart(2, '0')}` };
}

function instance(name: string) {
  const t = INSTANCE_TYPES.find((i) => i.name === name);
  if (!t) throw new Error(`instance type ${name} is not in the catalog`);
  return t;
}

/** The scenario's FOCUS records, in time order. */
export function generateFocusRecords(opts: FocusDatasetOptions): FocusRecord[] {
  const startMs = validate(opts);
  const rand = mulberry32(opts.seed);
  const spikeDay = seedSpikeDay(opts.days);
  const out: FocusRecord[] = [];
  const common = (chargeStart: number, chargeEnd: number) => {
    const bp = billingPeriod(chargeStart);
    return {
      BillingAccountId: ACCOUNT,
      BillingCurrency: 'USD',
      BillingPeriodStart: bp.start,
      BillingPeriodEnd: bp.end,
      ChargeCategory: 'Usage',
      ChargePeriodStart: iso(chargeStart),
      ChargePeriodEnd: iso(chargeEnd),
      ProviderName: 'ExampleCloud',
      PublisherName: 'ExampleCloud',
      InvoiceIssuerName: 'ExampleCloud',
      RegionId: REGION.id,
      RegionName: REGION.name,
    };
  };

  for (let day = 0; day < opts.days; day++) {
    const dayMs = startMs + day * DAY_MS;
    const weekday = new Date(dayMs).getUTCDay(); // 0 = Sunday
    const isWeekday = weekday >= 1 && weekday <= 5;
    // chat-prod's peak node: on from 13:00 UTC for 8-10 hours on weekdays.
    const peakHours = isWeekday ? 8 + Math.floor(rand() * 3) : 0;

    for (let hour = 0; hour < 24; hour++) {
      const h0 = dayMs + hour * HOUR_MS;
      for (const r of SEED_RESOURCES) {
        if (r.schedule === 'weekday-peak' && !(hour >= 13 && hour < 13 + peakHours)) continue;
        const t = instance(r.instanceType);
        const price = money(t.hourlyUsd);
        const tags: Record<string, string> = { instance_type: t.name, team: r.deployment ? 'ml-platform' : 'analytics', env: 'prod' };
        if (r.deployment) tags.deployment = r.deployment;
        out.push({
          ...common(h0, h0 + HOUR_MS),
          ChargeDescription: `${t.name} on-demand instance hour`,
          BilledCost: price,
          EffectiveCost: price,
          ListCost: price,
          ListUnitPrice: price,
          PricingQuantity: '1',
          PricingUnit: 'Hours',
          ConsumedQuantity: '1',
          ConsumedUnit: 'Hours',
          ResourceId: r.resourceId,
          ResourceName: r.resourceId,
          ResourceType: 'Virtual Machine',
          ServiceCategory: 'Compute',
          ServiceName: 'Virtual Machines',
          SkuId: `VM-${t.name.toUpperCase()}`,
          SkuPriceId: `VM-${t.name.toUpperCase()}-OD-${REGION.id}`,
          Tags: JSON.stringify(tags),
        });
      }
    }

    // Object storage: ~2 TB stored (GB-month prorated per day) and daily internet egress.
    const storedGb = 2000 + day * 5 + Math.round(rand() * 20);
    const storedGbMonths = (storedGb * 24) / 730;
    const storageCost = storedGbMonths * STORAGE_USD_PER_GB_MONTH;
    const bucketTags = JSON.stringify({ team: 'ml-platform', env: 'prod' });
    out.push({
      ...common(dayMs, dayMs + DAY_MS),
      ChargeDescription: 'Standard storage',
      BilledCost: money(storageCost),
      EffectiveCost: money(storageCost),
      ListCost: money(storageCost),
      ListUnitPrice: money(STORAGE_USD_PER_GB_MONTH),
      PricingQuantity: money(storedGbMonths),
      PricingUnit: 'GB-Month',
      ConsumedQuantity: money(storedGbMonths),
      ConsumedUnit: 'GB-Month',
      ResourceId: SEED_BUCKET,
      ResourceName: SEED_BUCKET,
      ResourceType: 'Bucket',
      ServiceCategory: 'Storage',
      ServiceName: 'Object Storage',
      SkuId: 'OBJ-STANDARD-STORAGE',
      SkuPriceId: `OBJ-STANDARD-STORAGE-${REGION.id}`,
      Tags: bucketTags,
    });
    const egressGb = day === spikeDay ? 5200 + Math.round(rand() * 100) : 40 + Math.round(rand() * 20);
    const egressCost = egressGb * EGRESS_USD_PER_GB;
    out.push({
      ...common(dayMs, dayMs + DAY_MS),
      ChargeDescription: 'Data transfer out to the internet',
      BilledCost: money(egressCost),
      EffectiveCost: money(egressCost),
      ListCost: money(egressCost),
      ListUnitPrice: money(EGRESS_USD_PER_GB),
      PricingQuantity: String(egressGb),
      PricingUnit: 'GB',
      ConsumedQuantity: String(egressGb),
      ConsumedUnit: 'GB',
      ResourceId: SEED_BUCKET,
      ResourceName: SEED_BUCKET,
      ResourceType: 'Bucket',
      ServiceCategory: 'Networking',
      ServiceName: 'Object Storage',
      SkuId: 'OBJ-EGRESS-INTERNET',
      SkuPriceId: `OBJ-EGRESS-INTERNET-${REGION.id}`,
      Tags: bucketTags,
    });
  }
  return out;
}

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export function toFocusCsv(records: readonly FocusRecord[]): string {
  const lines = [FOCUS_COLUMNS.join(',')];
  for (const r of records) lines.push(FOCUS_COLUMNS.map((c) => csvField(r[c])).join(','));
  return `${lines.join('\n')}\n`;
}

/** The whole dataset as one CSV text. */
export function generateFocusDataset(opts: FocusDatasetOptions): string {
  return toFocusCsv(generateFocusRecords(opts));
}

/** The dataset split into one CSV per calendar month of ChargePeriodStart, in month order. */
export function generateFocusFiles(opts: FocusDatasetOptions): Array<{ name: string; csv: string }> {
  const byMonth = new Map<string, FocusRecord[]>();
  for (const r of generateFocusRecords(opts)) {
    const key = r.ChargePeriodStart.slice(0, 7);
    const list = byMonth.get(key) ?? [];
    list.push(r);
    byMonth.set(key, list);
  }
  return [...byMonth.keys()].sort().map((k) => ({ name: `focus-${k}.csv`, csv: toFocusCsv(byMonth.get(k)!) }));
}

/** Writes the monthly files into `dir` (created if needed); returns their paths. */
export function writeFocusDataset(dir: string, opts: FocusDatasetOptions): string[] {
  mkdirSync(dir, { recursive: true });
  return generateFocusFiles(opts).map(({ name, csv }) => {
    const file = path.join(dir, name);
    writeFileSync(file, csv);
    return file;
  });
}

/** The analysis window of a generated dataset: [start, start + days). */
export function scenarioWindow(opts: Pick<FocusDatasetOptions, 'start' | 'days'>): { from: string; to: string } {
  const s = parseStart(opts.start);
  return { from: iso(s), to: iso(s + opts.days * DAY_MS) };
}

/**
 * Utilisation of the scenario's resources over the period (as the resource metrics would show):
 * chat-prod busy, batch-api's H100 lightly used, the reporting instance idle 95 % of the time.
 * Samples: 5-minute samples over 30 days.
 */
export function scenarioUtilisation(): ResourceUtilisation[] {
  const samples = 30 * 24 * 12;
  return [
    { resourceId: 'gpu-chat-prod-1', meanUtilisation: 0.61, idleShare: 0.02, p95Utilisation: 0.82, samples },
    { resourceId: 'gpu-chat-prod-2', meanUtilisation: 0.59, idleShare: 0.03, p95Utilisation: 0.8, samples },
    { resourceId: 'gpu-chat-prod-3', meanUtilisation: 0.7, idleShare: 0.01, p95Utilisation: 0.9, samples: Math.round(samples * 0.25) },
    { resourceId: 'gpu-batch-1', meanUtilisation: 0.14, idleShare: 0.3, p95Utilisation: 0.28, samples },
    { resourceId: 'i-idle-reporting', meanUtilisation: 0.03, idleShare: 0.95, p95Utilisation: 0.12, samples },
  ];
}

/** Tokens served per deployment over `days` days (chat-prod 160 M a day, batch-api 20 M a day). */
export function scenarioTokens(days: number): Record<string, number> {
  return { 'chat-prod': 160_000_000 * days, 'batch-api': 20_000_000 * days };
}

function intArg(what: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be an integer ≥ ${min}`);
    return n;
  };
}

function main(argv: string[]): void {
  const program = new Command()
    .name('generate-focus')
    .description('Writes a FOCUS 1.x cost-and-usage dataset (one CSV per month) for the seed scenario')
    .requiredOption('--out <dir>', 'output directory')
    .option('--days <n>', 'number of days', intArg('--days', 1), 30)
    .option('--seed <n>', 'PRNG seed', intArg('--seed', 0), 1)
    .option('--start <date>', 'first day, YYYY-MM-DD (UTC)', '2025-06-01')
    .parse(argv);
  const o = program.opts<{ out: string; days: number; seed: number; start: string }>();
  const files = writeFocusDataset(path.resolve(o.out), { days: o.days, seed: o.seed, start: o.start, scenario: 'seed' });
  for (const f of files) console.log(f);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv);
  } catch (err) {
    console.error(`generate-focus: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
