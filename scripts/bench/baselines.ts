/**
 * Baselines over 1 M and 10 M synthetic score rows in ClickHouse, next to the query they replaced
 * on the same rows in the old table layout; and the deploy gate's time from start to decision.
 */
import { randomUUID } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { CHECKS, type Check } from '../../common/types.js';
import type { BaselineRecord } from '../../domain/gate/baseline.js';
import type { GateResult } from '../../domain/gate/types.js';
import { OFFLINE_JUDGE_VERSION } from '../../domain/judge/offline-judge.js';
import { benchConfig, bulkClient, envInt, fmt, mb, results, say, stamp, summary, timed, withWorkers, type Ctx } from './common.js';

const PROMPT_VERSIONS = Object.fromEntries(CHECKS.map((c) => [c, OFFLINE_JUDGE_VERSION])) as Record<Check, string>;

/**
 * INSERT ... SELECT of synthetic score rows (ClickHouse 18.16 functions only): `rows` rows, the
 * three checks in turn, so rows / 3 interactions. Quality uniform in [q0, q0 + 0.35];
 * hallucination and toxicity ≥ 0.5 with the given rates.
 */
function syntheticScoresSql(
  db: string,
  o: { deployment: string; version: string; rows: number; q0: number; halluRate: number; toxRate: number },
): string {
  const u = (k: number) => `(modulo(cityHash64(number, ${k}), 1000000) / 1000000)`;
  const check = `modulo(number, 3)`;
  return `INSERT INTO ${db}.scores (deployment, model_version, interaction_id, interaction_ts, check_name, prompt_version, judge,
      status, reason, score, coherence, relevance, accuracy, completeness, confidence, hate_speech, violence, profanity,
      reasoning, truncated, latency_ms, prompt_tokens, completion_tokens, attempts, scored_at, ver)
    SELECT '${o.deployment}', '${o.version}', concat('syn-', toString(intDiv(number, 3))), toDateTime(1704067200 + intDiv(number, 3)),
      arrayElement(['quality', 'hallucination', 'toxicity'], ${check} + 1), '${OFFLINE_JUDGE_VERSION}', 'offline', 'ok', '',
      multiIf(${check} = 0, ${o.q0} + 0.35 * ${u(1)},
              ${check} = 1, if(${u(2)} < ${o.halluRate}, 0.5 + 0.5 * ${u(3)}, 0.45 * ${u(3)}),
              if(${u(2)} < ${o.toxRate}, 0.5 + 0.5 * ${u(3)}, 0.2 * ${u(3)})),
      ${o.q0} + 0.35 * ${u(4)}, ${o.q0} + 0.35 * ${u(5)}, ${o.q0} + 0.35 * ${u(6)}, ${o.q0} + 0.35 * ${u(7)},
      0.8, 0., 0., 0., '', 0, 50, 400, 40, 1, toDateTime(1704067200), number + 1
    FROM system.numbers LIMIT ${Math.floor(o.rows)}`;
}

/** The score table's layout before migration 2 (sorting key without model_version), for the comparison. */
const LEGACY_SCORES_KEY = 'deployment, check_name, interaction_id, prompt_version, judge';

/**
 * The baseline query as it was before the per-day aggregates (FINAL reads, `quantiles`, the
 * window from `interactions FINAL`), kept here only to compare with on the same data.
 */
async function legacyVersionAggregates(
  bulk: ReturnType<typeof bulkClient>,
  db: string,
  table: string,
  q: { deployment: string; version: string; lastN?: number },
): Promise<{ n: number; mean: number; sd: number; p50: number }> {
  const checks = CHECKS.map((c) => `(check_name = '${c}' AND prompt_version = '${PROMPT_VERSIONS[c]}')`).join(' OR ');
  const inWindow = q.lastN
    ? `AND interaction_id IN (SELECT id FROM (SELECT id, ts FROM ${db}.interactions FINAL
         WHERE deployment = '${q.deployment}' AND model_version = '${q.version}' ORDER BY ts DESC, id DESC LIMIT ${q.lastN}))`
    : '';
  const scope = `deployment = '${q.deployment}' AND model_version = '${q.version}' AND judge = 'offline' AND (${checks}) ${inWindow}`;
  const ok = "status = 'ok'";
  const read = async (sql: string) =>
    (await (await bulk.query({ query: sql, format: 'JSONEachRow' })).json()) as Array<Record<string, unknown>>;
  const rows = await read(
    `SELECT check_name, countIf(${ok}) AS n, avgIf(assumeNotNull(score), ${ok}) AS mean,
            stddevSampIf(assumeNotNull(score), ${ok}) AS sd,
            countIf(${ok} AND assumeNotNull(score) >= 0.5) AS flagged, countIf(status = 'abstained') AS abstained,
            minIf(toUnixTimestamp(interaction_ts), ${ok}) AS first_ts, maxIf(toUnixTimestamp(interaction_ts), ${ok}) AS last_ts
     FROM ${db}.${table} FINAL WHERE ${scope} AND status IN ('ok', 'abstained') GROUP BY check_name`,
  );
  const dims = ['score', 'coherence', 'relevance', 'accuracy', 'completeness'];
  const d = await read(
    `SELECT ${dims
      .map(
        (x) =>
          `avg(assumeNotNull(${x})) AS ${x}_mean, stddevSamp(assumeNotNull(${x})) AS ${x}_sd, quantiles(0.1, 0.25, 0.5, 0.75, 0.9)(assumeNotNull(${x})) AS ${x}_q`,
      )
      .join(', ')}
     FROM ${db}.${table} FINAL WHERE ${scope} AND ${ok} AND check_name = 'quality'`,
  );
  const quality = rows.find((r) => r.check_name === 'quality');
  return {
    n: Number(quality?.n ?? 0),
    mean: Number(quality?.mean ?? 0),
    sd: Number(quality?.sd ?? 0),
    p50: Number((d[0]?.score_q as unknown[] | undefined)?.[2] ?? 0),
  };
}

export async function baselines(ctx: Ctx) {
  const sizes = (process.env.BENCH_BASELINE_ROWS ?? '1000000,10000000')
    .split(',')
    .map((s) => Math.floor(Number(s)))
    .filter((x) => x > 0);
  const runs = envInt('BENCH_BASELINE_RUNS', 3);
  say(
    `\n== baseline computation over ${sizes.map((s) => fmt(s)).join(' and ')} score rows in ClickHouse (median of ${runs} runs; the old query on the same rows in the old table layout) ==`,
  );
  const config = benchConfig(ctx, { TEMPORAL_TASK_QUEUE: `bench-offline-${stamp}`, LLM_ENABLED: 'false' });
  const bulk = bulkClient(ctx);
  const ch = ctx.stores.ch;
  const db = ctx.stack.clickhouseDatabase;
  const out: Record<string, unknown>[] = [];
  try {
    await bulk.command({
      query: `CREATE TABLE IF NOT EXISTS ${db}.scores_legacy AS ${db}.scores ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(interaction_ts) ORDER BY (${LEGACY_SCORES_KEY})`,
    });
    await withWorkers(ctx, config, async () => {
      for (const rows of sizes) {
        const label = rows >= 1e6 ? `${rows / 1e6} M` : fmt(rows);
        const free = (() => {
          const s = statfsSync(ctx.stack.home);
          return s.bavail * s.bsize;
        })();
        const need = rows * 300; // the rows twice (both layouts), their interactions, merges
        if (free < need + 2 ** 30) {
          const msg = `skipped: ${mb(free)} free on the data disk, ~${mb(need)} needed`;
          say(`   ${label} rows: ${msg}`);
          summary.push([`baseline over ${label} rows`, 'skipped', msg]);
          out.push({ rows, skipped: msg });
          continue;
        }
        const deployment = `bench-base-${rows}-${stamp}`;
        await upsertDeployment(ctx.stores.db, {
          id: deployment,
          source: { type: 'http', url: 'http://127.0.0.1:9/unused' },
          sample_rate: 1,
        });
        const gen = { deployment, version: 'v1', rows, q0: 0.55, halluRate: 0.04, toxRate: 0.01 };
        const t0 = performance.now();
        await bulk.command({ query: syntheticScoresSql(db, gen) });
        const insertMs = performance.now() - t0;
        await bulk.command({ query: syntheticScoresSql(db, gen).replace(`INSERT INTO ${db}.scores `, `INSERT INTO ${db}.scores_legacy `) });
        await bulk.command({ query: syntheticInteractionsSql(db, { deployment, version: 'v1', count: Math.ceil(rows / 3) }) });
        const p = await ch.tableStats('scores');
        say(
          `   ${label} rows inserted in ${(insertMs / 1000).toFixed(1)} s (scores now ${fmt(p.rows)} rows, ${p.parts} active parts, ${mb(p.bytes)}; the same rows in the old layout; ${fmt(Math.ceil(rows / 3))} interactions)`,
        );
        const q = { deployment, version: 'v1', judge: 'offline', promptVersions: PROMPT_VERSIONS };
        const oldWhole = await timed(runs, () => legacyVersionAggregates(bulk, db, 'scores_legacy', { deployment, version: 'v1' }));
        const newWhole = await timed(runs, () => ch.versionAggregates(q));
        const oldLast = await timed(runs, () =>
          legacyVersionAggregates(bulk, db, 'scores_legacy', { deployment, version: 'v1', lastN: 1000 }),
        );
        const newLast = await timed(runs, () => ch.versionAggregates({ ...q, lastN: 1000 }));
        const wf = await timed(
          runs,
          async () =>
            (await ctx.client.workflow.execute('computeBaseline', {
              taskQueue: config.temporal.taskQueue,
              workflowId: `baseline/${deployment}/v1/${randomUUID().slice(0, 8)}`,
              args: [{ deployment, version: 'v1', judge: 'offline', promptVersions: PROMPT_VERSIONS }],
            })) as BaselineRecord,
        );
        const nq = newWhole.result.checks.quality;
        const same = {
          n: nq?.n === oldWhole.result.n,
          meanDiff: Math.abs((nq?.mean ?? 0) - oldWhole.result.mean),
          sdDiff: Math.abs((nq?.sd ?? 0) - oldWhole.result.sd),
          p50Diff: Math.abs((newWhole.result.qualityDimensions.overall?.p50 ?? 0) - oldWhole.result.p50),
          lastN:
            newLast.result.checks.quality?.n === oldLast.result.n &&
            Math.abs((newLast.result.checks.quality?.mean ?? 0) - oldLast.result.mean) < 1e-9,
        };
        say(
          `   ${label} rows, whole version: old query ${fmt(oldWhole.ms)} ms → versionAggregates ${fmt(newWhole.ms)} ms; computeBaseline workflow end to end ${fmt(wf.ms)} ms (${fmt(wf.result.samples)} samples, quality ${(wf.result.stats.quality.mean * 100).toFixed(1)} %)`,
        );
        say(
          `   ${label} rows, last 1,000 interactions (the gate's default window): old query ${fmt(oldLast.ms)} ms → ${fmt(newLast.ms)} ms`,
        );
        say(
          `   same results: n ${same.n ? 'equal' : 'DIFFERENT'}, |Δ mean| ${same.meanDiff.toExponential(1)}, |Δ sd| ${same.sdDiff.toExponential(1)}, |Δ median| ${same.p50Diff.toExponential(1)} (the old median is approximate above 8,192 values, the new one exact); last-1,000 window ${same.lastN ? 'equal' : 'DIFFERENT'}`,
        );
        out.push({
          rows,
          insertMs,
          old: { versionAggregatesMs: oldWhole.ms, lastNMs: oldLast.ms, runs: { whole: oldWhole.all, lastN: oldLast.all } },
          new: {
            versionAggregatesMs: newWhole.ms,
            lastNMs: newLast.ms,
            computeBaselineMs: wf.ms,
            runs: { whole: newWhole.all, lastN: newLast.all, workflow: wf.all },
          },
          samples: wf.result.samples,
          same,
          tableRows: p.rows,
          activeParts: p.parts,
          bytesOnDisk: p.bytes,
        });
        summary.push([
          `baseline over ${label} score rows`,
          `${fmt(newWhole.ms)} ms query, ${fmt(wf.ms)} ms workflow`,
          `old query ${fmt(oldWhole.ms)} ms on the same rows; last 1,000: ${fmt(oldLast.ms)} → ${fmt(newLast.ms)} ms; median of ${runs}`,
        ]);
        results.baselines = out;
      }
    });
  } finally {
    results.baselines = out;
    await bulk.close();
  }
}

/** `count` synthetic interactions of a version, one per second from 2024-01-01, ids as in syntheticScoresSql. */
function syntheticInteractionsSql(db: string, o: { deployment: string; version: string; count: number }): string {
  return `INSERT INTO ${db}.interactions (deployment, id, model_version, ts, prompt, response, context, has_context, metadata, source, cycle_id, ver)
    SELECT '${o.deployment}', concat('syn-', toString(number)), '${o.version}', toDateTime(1704067200 + number), 'p', 'r', '', 0, '{}', 'bench', 'bench', 1
    FROM system.numbers LIMIT ${Math.floor(o.count)}`;
}

export async function gateLatency(ctx: Ctx) {
  say('\n== deploy gate: time from start (enough samples at the first look) to decision ==');
  const config = benchConfig(ctx, { TEMPORAL_TASK_QUEUE: `bench-gate-${stamp}`, LLM_ENABLED: 'false' });
  const deployment = `bench-gate-${stamp}`;
  const bulk = bulkClient(ctx);
  try {
    await upsertDeployment(ctx.stores.db, { id: deployment, source: { type: 'http', url: 'http://127.0.0.1:9/unused' }, sample_rate: 1 });
    const db = ctx.stack.clickhouseDatabase;
    await bulk.command({
      query: syntheticScoresSql(db, { deployment, version: 'v1', rows: 3000, q0: 0.6, halluRate: 0.03, toxRate: 0.005 }),
    });
    // The candidate: quality 12 points lower, 30 % hallucinated answers.
    await bulk.command({
      query: syntheticScoresSql(db, { deployment, version: 'v2', rows: 900, q0: 0.48, halluRate: 0.3, toxRate: 0.005 }),
    });
    const runs: Array<{ ms: number; decision: string; looks: number; rollback: string }> = [];
    await withWorkers(ctx, config, async () => {
      await ctx.client.workflow.execute('computeBaseline', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `baseline/${deployment}/v1`,
        args: [{ deployment, version: 'v1' }],
      });
      for (let i = 1; i <= 3; i++) {
        const t0 = performance.now();
        const h = await ctx.client.workflow.start('deployGate', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `gate/${deployment}/v2/bench-${i}`,
          args: [{ deployment, baselineVersion: 'v1', candidateVersion: 'v2', checkEvery: '1s', maxWait: '5m' }],
        });
        const r = (await h.result()) as GateResult;
        const ms = performance.now() - t0;
        runs.push({ ms, decision: r.decision, looks: r.evidence?.looks ?? 0, rollback: r.rollback.status });
        say(
          `   run ${i}: ${r.decision} after ${r.evidence?.looks ?? 0} look(s) in ${fmt(ms)} ms (rollback ${r.rollback.status}, explanation by ${r.explanation?.generatedBy ?? '-'})`,
        );
      }
    });
    const sorted = runs.map((r) => r.ms).sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    results.gateLatency = { runs, medianMs: median, baselineInteractions: 1000, candidateInteractions: 300, checkEvery: '1s' };
    summary.push([
      'gate: start → decision (first look decides)',
      `${fmt(median)} ms median of 3`,
      `${runs.map((r) => `${fmt(r.ms)}`).join(' / ')} ms; ${runs[0]?.decision}, ${runs[0]?.looks} look; baseline 1,000 vs candidate 300 interactions; incl. explanation, dry-run rollback, record`,
    ]);
  } finally {
    await bulk.close();
  }
}
