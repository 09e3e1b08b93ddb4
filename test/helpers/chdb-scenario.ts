/**
 * One pass over every method of ClickHouseStore with deterministic data, for running the
 * product's statements against two servers (ClickHouse 18.16 and chdb's current release) and
 * comparing what they return.
 */
import type { CostUsageRow, InteractionRow, MetricSampleRow, ScoreRow } from '../../activities/storage/clickhouse/rows.js';
import { ClickHouseStore } from '../../activities/storage/clickhouse/store.js';
import type { Check } from '../../common/types.js';

export const PV: Record<Check, string> = { quality: 'q-v1', hallucination: 'h-v1', toxicity: 't-v1' };
const CHECKS: Check[] = ['quality', 'hallucination', 'toxicity'];
const DAY = 86_400;
/** 2014-01-01T00:00:00Z: interactions then spread over more than 100 months. */
const T0 = 1_388_534_400;

/** Deterministic pseudo-random numbers in [0, 1). */
export function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

export function interaction(deployment: string, id: string, version: string, ts: number | string): InteractionRow {
  return {
    deployment,
    id,
    model_version: version,
    ts: ts as number,
    prompt: `prompt ${id}`,
    response: `response ${id}`,
    context: '',
    has_context: 0,
    metadata: '{}',
    source: 'http',
    cycle_id: 'c1',
    ver: 1,
  };
}

export function scoreRow(
  o: Partial<ScoreRow> & Pick<ScoreRow, 'deployment' | 'model_version' | 'interaction_id' | 'interaction_ts' | 'check_name'>,
  r: () => number,
): ScoreRow {
  const status = o.status ?? 'ok';
  const v = () => (status === 'ok' ? Math.round(r() * 1000) / 1000 : null);
  return {
    prompt_version: PV[o.check_name],
    judge: 'offline',
    status,
    reason: status === 'ok' ? '' : 'reason',
    score: v(),
    coherence: v(),
    relevance: v(),
    accuracy: status === 'ok' && r() < 0.1 ? null : v(),
    completeness: v(),
    confidence: v(),
    hate_speech: null,
    violence: null,
    profanity: null,
    reasoning: '',
    truncated: 0,
    latency_ms: 10,
    prompt_tokens: 100,
    completion_tokens: 10,
    attempts: 1,
    scored_at: 1_700_000_000,
    ver: 1,
    ...o,
  };
}

/** Scores of three checks for each interaction (some abstained or failed). */
export function scoresFor(interactions: InteractionRow[], r: () => number, judge = 'offline'): ScoreRow[] {
  const out: ScoreRow[] = [];
  for (const i of interactions) {
    for (const c of CHECKS) {
      const x = r();
      const status = x < 0.05 ? 'abstained' : x < 0.08 ? 'failed' : 'ok';
      out.push(
        scoreRow(
          {
            deployment: i.deployment,
            model_version: i.model_version,
            interaction_id: i.id,
            interaction_ts: i.ts,
            check_name: c,
            status,
            judge,
          },
          r,
        ),
      );
    }
  }
  return out;
}

/** Methods of the store that the scenario must call (all public ones but the raw query and close). */
export function storeMethods(): string[] {
  return Object.getOwnPropertyNames(ClickHouseStore.prototype).filter(
    (m) => !['constructor', 'exec', 'insert', 'query', 'close'].includes(m),
  );
}

/**
 * Run the scenario on one store (its database must not exist yet). Returns every method's
 * result by step name, and the names of the methods called.
 */
export async function runScenario(store: ClickHouseStore): Promise<{ results: Record<string, unknown>; called: Set<string> }> {
  const called = new Set<string>();
  const st = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v === 'function') {
        called.add(String(prop));
        return v.bind(target);
      }
      return v;
    },
  });
  const results: Record<string, unknown> = {};
  const r = rng(42);
  const dep = 'dep-a';

  // An install of the first schema with data, then two workers upgrading at once.
  results.migrateV1 = await st.migrate({ upTo: 1 });
  const old = Array.from({ length: 60 }, (_, i) => interaction(dep, `old-${i}`, i < 30 ? 'v0' : 'v1', T0 + i * 17 * DAY));
  await st.insertIsolatingBad('interactions', old);
  await st.insertScores(scoresFor(old, r));
  // FOCUS rows in the first schema's layout: two collections of one source, the later read after the upgrade.
  const oldCost = (ver: number, resource: string, cost: number): CostUsageRow => ({
    charge_period_start: T0 + 2000 * DAY + 3600,
    charge_period_end: T0 + 2000 * DAY + 7200,
    billed_cost: cost,
    effective_cost: cost,
    resource_id: resource,
    resource_type: 'vm',
    service_name: 'compute',
    region_id: 'eu-1',
    sku_id: 'sku-1',
    consumed_quantity: 1,
    consumed_unit: 'hours',
    tags: '{}',
    source: 'focus-old',
    ver,
  });
  await st.insertCostRows([oldCost(1, 'vm-gone', 7), oldCost(1, 'vm-kept', 2)]);
  await st.insertCostRows([oldCost(2, 'vm-kept', 3)]);
  const both = await Promise.all([st.migrate(), st.migrate()]);
  results.migrateConcurrent = both.map((x) => x.length).sort();
  results.applied = await st.appliedMigrations();

  // Interactions over 150 months (more partitions than one block may touch), one poison row.
  const fresh = Array.from({ length: 300 }, (_, i) =>
    interaction(dep, `int-${String(i).padStart(4, '0')}`, i % 3 === 0 ? 'v2' : 'v1', T0 + i * 15 * DAY + (i % 7) * 3600),
  );
  const refused = await st.insertIsolatingBad('interactions', [
    ...fresh.slice(0, 150),
    interaction(dep, 'poison', 'v1', 'not a time'),
    ...fresh.slice(150),
  ]);
  results.refusedIds = refused.map((x) => x.row.id);
  const scores = scoresFor(fresh, r);
  // A second version judged on the same interaction ids: both rows are kept.
  const shared = fresh.slice(0, 40).map((i) => ({ ...i, model_version: 'v9' }));
  await st.insertScores([...scores, ...scoresFor(shared, r), ...scoresFor(fresh.slice(0, 20), r, 'llm-judge')]);

  results.ping = await st.ping();
  results.interactionsByIds = await st.interactionsByIds(dep, ['int-0000', 'int-0299', 'old-3', 'missing']);
  results.storedChecks = [
    ...(
      await st.storedChecks({ deployment: dep, ids: ['int-0000', 'int-0001', 'int-0002', 'missing'], judge: 'offline', promptVersions: PV })
    ).entries(),
  ]
    .map(([k, v]) => [k, [...v].sort()])
    .sort();
  results.countScores = [
    await st.countScores(dep),
    await st.countScores(dep, { final: false }),
    await st.countScores(dep, { status: 'ok' }),
    await st.countScores(dep, { status: 'failed', final: false }),
  ];
  results.countInteractions = await st.countInteractions(dep);
  results.interactionsPerVersion = [await st.interactionsPerVersion(dep), await st.interactionsPerVersion(dep, 'v2')];
  results.textChars = await st.textChars(dep, ['int-0000', 'int-0001', 'missing']);
  results.aggregateScores = await st.aggregateScores(dep);
  results.aggregateScoresV1 = await st.aggregateScores(dep, 'v1');
  results.aggregateScoresList = [await st.aggregateScores(dep, ['v2', 'v9']), await st.aggregateScores(dep, [])];
  results.interactionsPerVersionList = await st.interactionsPerVersion(dep, ['v0', 'v2']);
  results.latestScoredVersions = [await st.latestScoredVersions(dep, 2), await st.latestScoredVersions('nobody', 5)];
  results.versionCoverage = [
    await st.versionCoverage({ deployment: dep, judge: 'offline', keep: ['v0'], limit: 1 }),
    await st.versionCoverage({ deployment: dep, judge: 'llm-judge', keep: [], limit: 10 }),
  ];
  results.scoredVersions = await st.scoredVersions(
    new Date((T0 + 100 * DAY) * 1000).toISOString(),
    new Date((T0 + 4000 * DAY) * 1000).toISOString(),
  );
  const va = (x: Partial<Parameters<ClickHouseStore['versionAggregates']>[0]>) =>
    st.versionAggregates({ deployment: dep, version: 'v1', judge: 'offline', promptVersions: PV, ...x });
  results.versionWhole = await va({});
  results.versionV0 = await va({ version: 'v0' });
  results.versionV9 = await va({ version: 'v9' });
  results.versionLast50 = await va({ lastN: 50 });
  results.versionFromTo = await va({
    from: new Date((T0 + 500 * DAY) * 1000).toISOString(),
    to: new Date((T0 + 2500 * DAY) * 1000).toISOString(),
  });
  results.versionLastNInRange = await va({ lastN: 20, to: new Date((T0 + 2500 * DAY) * 1000).toISOString() });
  results.versionOtherJudge = await va({ judge: 'llm-judge' });
  results.versionNone = await va({ version: 'nope' });
  const trends = (x: Partial<Parameters<ClickHouseStore['scoreTrends']>[0]>) =>
    st.scoreTrends({
      deployment: dep,
      judge: 'offline',
      promptVersions: PV,
      from: new Date(T0 * 1000).toISOString(),
      to: new Date((T0 + 5000 * DAY) * 1000).toISOString(),
      ...x,
    });
  results.scoreTrends = await trends({});
  results.scoreTrendsWindow = await trends({
    from: new Date((T0 + 500 * DAY) * 1000).toISOString(),
    to: new Date((T0 + 700 * DAY) * 1000).toISOString(),
    maxBuckets: 10,
  });
  results.scoreTrendsNone = await trends({ judge: 'nobody' });
  results.scoreTrendsFollowed = await trends({ maxVersions: 1, keep: 'v0' });

  // Costs over 120 months, hourly charge periods not on day boundaries; metric samples over 150 days.
  const costs: CostUsageRow[] = [];
  for (let m = 0; m < 120; m++) {
    for (let h = 0; h < 3; h++) {
      const start = T0 + m * 30 * DAY + h * 7 * 3600 + 1800;
      costs.push({
        charge_period_start: start,
        charge_period_end: start + 3600,
        billed_cost: Math.round(r() * 10_000) / 100,
        effective_cost: Math.round(r() * 10_000) / 100,
        resource_id: `gpu-${h % 2}`,
        resource_type: 'gpu',
        service_name: 'inference',
        region_id: 'eu-1',
        sku_id: 'sku-1',
        consumed_quantity: 1,
        consumed_unit: 'hours',
        tags: '{}',
        source: 'focus',
        ver: 1,
      });
    }
  }
  // Twenty days of daily rows of three resources (one without an id) with tags, on two services.
  for (let d = 0; d < 20; d++) {
    for (const [i, resource] of ['gpu-0', 'gpu-1', ''].entries()) {
      const start = T0 + (10 + d) * DAY + 3600 * (i + 1);
      costs.push({
        charge_period_start: start,
        charge_period_end: start + 3600,
        billed_cost: 1,
        effective_cost: d === 15 && i === 1 ? 50 : 2 + i + Math.round(r() * 100) / 100,
        resource_id: resource,
        resource_type: 'gpu',
        service_name: i === 2 ? 'storage' : 'inference',
        region_id: 'eu-1',
        sku_id: `sku-${2 + (d % 2)}`,
        consumed_quantity: 1,
        consumed_unit: 'hours',
        tags: JSON.stringify(i === 2 ? {} : { deployment: `dep-${i}`, instance_type: d < 5 ? 'gpu.1xa100-80g' : 'gpu.1xh100-80g' }),
        source: 'focus',
        ver: 1,
      });
    }
  }
  for (const [i, c] of costs.entries()) c.seq = i;
  await st.insertCostRows(costs);
  await st.completeCostSnapshot('focus', 1, costs.length, { bad: 2, fingerprint: 'f1' });
  results.latestCostSnapshot = await st.latestCostSnapshot('focus');
  results.migratedCosts = await st.costTotals({
    from: new Date((T0 + 2000 * DAY) * 1000).toISOString(),
    to: new Date((T0 + 2001 * DAY) * 1000).toISOString(),
  });
  const costWindow = { from: new Date(T0 * 1000).toISOString(), to: new Date((T0 + 400 * DAY) * 1000).toISOString() };
  results.dailyCosts = await st.dailyCosts(costWindow.from, costWindow.to);
  results.dailyCostsLimited = await st.dailyCosts(costWindow.from, costWindow.to, { limit: 5 });
  // A window starting mid-day: that day counts in the totals' days only.
  const midDay = { from: new Date((T0 + 12.5 * DAY) * 1000).toISOString(), to: costWindow.to };
  results.costTotals = [await st.costTotals(costWindow), await st.costTotals(midDay)];
  results.costByDeployment = [await st.costByDeployment({ ...costWindow, limit: 5 }), await st.costByDeployment({ ...midDay, limit: 1 })];
  results.costByServiceDay = [
    await st.costByServiceDay({ ...costWindow, limit: 5, trailingDays: 7 }),
    await st.costByServiceDay({ ...midDay, limit: 1, trailingDays: 3 }),
  ];
  results.costOfResources = [
    await st.costOfResources({ ...costWindow, ids: ['gpu-0', 'gpu-1', 'missing', ''] }),
    await st.costOfResources({ ...midDay, ids: ['gpu-1'] }),
  ];
  const samples: MetricSampleRow[] = [];
  for (let d = 0; d < 150; d++) {
    for (let k = 0; k < 4; k++)
      samples.push({
        ts: T0 + d * DAY + k * 21_600 + 60,
        source: 'prom-1',
        metric: k % 2 ? 'vllm:num_requests_running' : 'vllm:gpu_cache_usage_perc',
        labels: '{}',
        value: d + k / 10,
        ver: 1,
      });
  }
  // A histogram of two pods (buckets `le` of each pod are one label group).
  for (let d = 0; d < 3; d++)
    for (const pod of ['a', 'b'])
      for (const le of ['0.1', '1', '+Inf'])
        samples.push({
          ts: T0 + d * DAY + 120,
          source: 'prom-1',
          metric: 'vllm:e2e_request_latency_seconds_bucket',
          labels: JSON.stringify({ le, pod }),
          value: d * 10 + le.length,
          ver: 1,
        });
  await st.insertMetricSamples(samples);
  const allMetrics = ['vllm:num_requests_running', 'vllm:gpu_cache_usage_perc', 'vllm:e2e_request_latency_seconds_bucket'];
  results.metricSeriesCounts = await st.metricSeriesCounts({
    metrics: allMetrics,
    sources: ['prom-1', 'nobody'],
    from: new Date(T0 * 1000).toISOString(),
    to: new Date((T0 + 150 * DAY) * 1000).toISOString(),
  });
  results.metricSamplesGroups = await st.metricSamples({
    metrics: allMetrics,
    sources: ['prom-1'],
    from: new Date(T0 * 1000).toISOString(),
    to: new Date((T0 + 2 * DAY) * 1000).toISOString(),
    stepSeconds: 3600,
    groups: { perMetric: 1, from: new Date(T0 * 1000).toISOString(), to: new Date((T0 + 150 * DAY) * 1000).toISOString() },
  });
  results.metricSamples = await st.metricSamples({
    metrics: ['vllm:num_requests_running', 'vllm:gpu_cache_usage_perc'],
    sources: ['prom-1'],
    from: new Date(T0 * 1000).toISOString(),
    to: new Date((T0 + 150 * DAY) * 1000).toISOString(),
    stepSeconds: 86_400,
  });
  const rowsOf = async (t: Parameters<ClickHouseStore['tableStats']>[0]) => (await st.tableStats(t)).rows;
  results.tableRows = {
    interactions: await rowsOf('interactions'),
    scores: await rowsOf('scores'),
    cost_usage: await rowsOf('cost_usage'),
    metric_samples: await rowsOf('metric_samples'),
    score_daily: (await st.tableStats('score_daily')).rows > 0,
  };
  // A collection that failed (its rows deleted), a newer one of the migrated source, then both
  // sources unregistered: mutations, which run asynchronously, so nothing is read back.
  await st.insertCostRows(costs.slice(0, 3).map((c) => ({ ...c, ver: 2 })));
  await st.deleteCostRows({ sources: ['focus'], ver: 2 });
  await st.completeCostSnapshot('focus-old', 3, 0);
  await st.deleteCostRows({ sources: ['focus', 'focus-old'] });
  return { results, called };
}

/** Deep comparison of two results with a tolerance on floating-point numbers; returns the differences. */
export function differences(a: unknown, b: unknown, path = '$', out: string[] = []): string[] {
  if (typeof a === 'number' && typeof b === 'number') {
    const close = a === b || Math.abs(a - b) <= 1e-6 + 1e-9 * Math.max(Math.abs(a), Math.abs(b)) || (Number.isNaN(a) && Number.isNaN(b));
    if (!close) out.push(`${path}: ${a} vs ${b}`);
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push(`${path}: length ${a.length} vs ${b.length}`);
    for (let i = 0; i < Math.min(a.length, b.length); i++) differences(a[i], b[i], `${path}[${i}]`, out);
    return out;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, out);
    return out;
  }
  if (a !== b) out.push(`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  return out;
}
