/**
 * Activities of the cost, performance, resource and application agents, and of infrastructure
 * collection: read the sources (FOCUS exports, Prometheus / vLLM / DCGM metrics) into ClickHouse,
 * gather bounded, aggregated inputs for the agents' pure findings, narrate with the LLM, store.
 */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { AgentName, CostRow, Finding, ResourceSeries, ResourceUtilisation } from '../../domain/agents/types.js';
import {
  AGENT_PROMPT_VERSION,
  answerSchema,
  narrativeSchema,
  renderAskPrompt,
  renderNarrativePrompt,
  type Narrative,
} from '../../domain/agents/narrative.js';
import type { DeploymentQuality } from '../../domain/agents/application/findings.js';
import { redact, secretsOf } from '../../common/config.js';
import { numbersNotInData } from '../../domain/judge/prompts.js';
import { ID_PATTERN } from '../../common/types.js';
import { unixSeconds } from '../storage/clickhouse/store.js';
import { FocusError, readFocusDirectory } from '../infra/focus.js';
import { toVersionStats, type GateDeps } from '../gate/activities.js';
import { buildPerformanceSeries, buildResourceSeries, RESOURCE_METRICS, VLLM_METRICS } from '../../domain/infra/series-builder.js';
import { MetricsSourceError, queryRange, scrapeMetrics } from '../infra/prometheus.js';

export const infraSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('focus'), path: z.string().min(1) }),
  z.object({
    kind: z.literal('scrape'),
    url: z.string().url(),
    /** The host's id in the cost data and its instance type, to price recommendations. */
    resourceId: z.string().optional(),
    instanceType: z.string().optional(),
  }),
  z.object({
    kind: z.literal('prometheus'),
    url: z.string().url(),
    resourceId: z.string().optional(),
    instanceType: z.string().optional(),
  }),
]);
export type InfraSourceConfig = z.output<typeof infraSourceSchema>;

export interface InfraSource {
  id: string;
  config: InfraSourceConfig;
  lastCollectedTo?: string;
}

export interface CollectOutcome {
  id: string;
  kind: InfraSourceConfig['kind'];
  rows: number;
  bad: number;
  error?: string;
}

export interface AgentWindow {
  from: string;
  to: string;
  stepSeconds: number;
}

/** Series scraped directly are one sample per scrape; older data is read from ClickHouse. */
const PROMETHEUS_SELECTOR = `{__name__=~"vllm:.*|DCGM_FI_.*|node_cpu_seconds_total|node_memory_MemTotal_bytes|node_memory_MemAvailable_bytes"}`;
/** Upper bounds on what an agent passes to its workflow (history stays small). */
const MAX_POINTS = 400;
const MAX_COST_ROWS = 5000;

const canonicalLabels = (l: Record<string, string>) =>
  JSON.stringify(Object.fromEntries(Object.entries(l).filter(([k]) => k !== '__name__').sort(([a], [b]) => a.localeCompare(b))));

export function createAgentActivities(deps: GateDeps) {
  const { config, ch, db } = deps;
  const clean = (s: string) => redact(s, secretsOf(config));

  async function listInfraSources(kinds?: Array<InfraSourceConfig['kind']>): Promise<InfraSource[]> {
    const r = await db.query<{ id: string; kind: string; config: unknown; last_collected_to: Date | null }>(
      'SELECT id, kind, config, last_collected_to FROM infra_sources ORDER BY id',
    );
    return r.rows
      .map((row) => ({ id: row.id, config: infraSourceSchema.parse(row.config), lastCollectedTo: row.last_collected_to?.toISOString() }))
      .filter((s) => !kinds || kinds.includes(s.config.kind));
  }

  /** Read one source into ClickHouse. Bad data and unreachable endpoints are reported, not thrown. */
  async function collectInfraSource(input: { id: string }): Promise<CollectOutcome> {
    const src = (await listInfraSources()).find((s) => s.id === input.id);
    if (!src) throw ApplicationFailure.create({ type: 'UnknownSource', nonRetryable: true, message: `no infrastructure source '${input.id}'` });
    const c = src.config;
    const ver = Date.now();
    try {
      if (c.kind === 'focus') {
        const r = await readFocusDirectory(c.path);
        await ch.insertCostRows(
          r.rows.map((x) => ({
            charge_period_start: unixSeconds(x.chargePeriodStart),
            charge_period_end: unixSeconds(x.chargePeriodEnd),
            billed_cost: x.billedCost,
            effective_cost: x.effectiveCost,
            resource_id: x.resourceId,
            resource_type: x.resourceType,
            service_name: x.serviceName,
            region_id: x.regionId,
            sku_id: x.skuId,
            consumed_quantity: x.consumedQuantity,
            consumed_unit: x.consumedUnit,
            tags: JSON.stringify(x.tags),
            source: src.id,
            ver,
          })),
        );
        return { id: src.id, kind: c.kind, rows: r.rows.length, bad: r.bad.length };
      }
      const now = new Date();
      const samples =
        c.kind === 'scrape'
          ? await scrapeMetrics(c.url)
          : (
              await queryRange(c.url, PROMETHEUS_SELECTOR, {
                start: src.lastCollectedTo ?? new Date(now.getTime() - 3_600_000).toISOString(),
                end: now.toISOString(),
                stepSeconds: 15,
              })
            ).flatMap((series) =>
              series.values.map(([t, v]) => ({
                ts: new Date(t * 1000).toISOString(),
                metric: series.metric.__name__ ?? '',
                labels: series.metric,
                value: v,
              })),
            );
      const rows = samples
        .filter((x) => x.metric && Number.isFinite(x.value))
        .map((x) => ({ ts: unixSeconds(x.ts), source: src.id, metric: x.metric, labels: canonicalLabels(x.labels), value: x.value, ver }));
      await ch.insertMetricSamples(rows);
      await db.query('UPDATE infra_sources SET last_collected_to = $2 WHERE id = $1', [src.id, now.toISOString()]);
      return { id: src.id, kind: c.kind, rows: rows.length, bad: samples.length - rows.length };
    } catch (e) {
      if (e instanceof FocusError || e instanceof MetricsSourceError) {
        return { id: src.id, kind: c.kind, rows: 0, bad: 0, error: clean(e.message) };
      }
      throw e;
    }
  }

  async function collectKinds(kinds: Array<InfraSourceConfig['kind']>): Promise<{ sources: InfraSource[]; errors: string[] }> {
    const sources = await listInfraSources(kinds);
    const outcomes = await Promise.all(sources.map((s) => collectInfraSource({ id: s.id })));
    return { sources, errors: outcomes.filter((o) => o.error).map((o) => `${o.id}: ${o.error}`) };
  }

  function noData(agent: AgentName, w: AgentWindow, errors: string[], what: string): ApplicationFailure {
    const why = errors.length ? `; source errors: ${errors.join('; ')}` : '';
    return ApplicationFailure.create({
      type: 'NoData',
      nonRetryable: true,
      message: `${agent} agent: no ${what} between ${w.from} and ${w.to}${why}`,
    });
  }

  function hostMap(sources: InfraSource[]) {
    return Object.fromEntries(
      sources
        .filter((s) => s.config.kind !== 'focus')
        .map((s) => {
          const c = s.config as { resourceId?: string; instanceType?: string };
          return [s.id, { resourceId: c.resourceId, instanceType: c.instanceType }];
        }),
    );
  }

  async function resourceSeries(w: AgentWindow, sources: InfraSource[]): Promise<ResourceSeries[]> {
    const samples = await ch.metricSamples({ metrics: RESOURCE_METRICS, sources: sources.map((s) => s.id), from: w.from, to: w.to, stepSeconds: w.stepSeconds });
    return buildResourceSeries(samples, w.stepSeconds, hostMap(sources)).map((s) => ({ ...s, points: s.points.slice(-MAX_POINTS) }));
  }

  function utilisationOf(series: ResourceSeries[]): ResourceUtilisation[] {
    return series
      .filter((s) => s.resourceId)
      .map((s) => {
        const u = s.points.map((p) => p.gpuUtil ?? p.cpuUtil).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
        const n = u.length;
        return {
          resourceId: s.resourceId!,
          meanUtilisation: n ? u.reduce((a, b) => a + b, 0) / n : 0,
          idleShare: n ? u.filter((x) => x < 0.05).length / n : 0,
          p95Utilisation: n ? u[Math.min(n - 1, Math.floor(0.95 * n))]! : 0,
          samples: n,
        };
      })
      .filter((u) => u.samples > 0);
  }

  async function gatherCost(w: AgentWindow) {
    const { errors } = await collectKinds(['focus']);
    const metricSources = await listInfraSources(['scrape', 'prometheus']);
    const daily = await ch.dailyCosts(w.from, w.to);
    if (!daily.length) throw noData('cost', w, errors, 'cost data (FOCUS rows)');
    const rows: CostRow[] = daily.slice(0, MAX_COST_ROWS).map((r) => ({
      chargePeriodStart: new Date(r.charge_period_start * 1000).toISOString(),
      chargePeriodEnd: new Date(r.charge_period_end * 1000).toISOString(),
      billedCost: r.billed_cost,
      effectiveCost: r.effective_cost,
      resourceId: r.resource_id,
      resourceType: r.resource_type,
      serviceName: r.service_name,
      regionId: r.region_id,
      skuId: r.sku_id,
      consumedQuantity: r.consumed_quantity,
      consumedUnit: r.consumed_unit,
      tags: (() => {
        try {
          return JSON.parse(r.tags) as Record<string, string>;
        } catch {
          return {};
        }
      })(),
    }));
    // Utilisation over the last day at a fine step (the cost window's step is far too coarse).
    const recent = { from: new Date(Math.max(Date.parse(w.from), Date.parse(w.to) - 86_400_000)).toISOString(), to: w.to, stepSeconds: 300 };
    const utilisation = utilisationOf(await resourceSeries(recent, metricSources));
    const perf = buildPerformanceSeries(
      await ch.metricSamples({
        metrics: ['vllm:num_requests_running', 'vllm:prompt_tokens_total', 'vllm:generation_tokens_total'],
        sources: metricSources.map((s) => s.id),
        from: w.from,
        to: w.to,
        stepSeconds: w.stepSeconds,
      }),
      w.stepSeconds,
    );
    // Tokens a metrics source served count for the deployment its host is tagged with in the cost
    // data (or for the deployment named like the source).
    const deploymentOf = new Map(rows.filter((r) => r.tags.deployment).map((r) => [r.resourceId, r.tags.deployment!]));
    const hosts = hostMap(metricSources);
    const tokensByDeployment: Record<string, number> = {};
    for (const s of perf) {
      const resourceId = hosts[s.deployment]?.resourceId;
      const deployment = (resourceId && deploymentOf.get(resourceId)) || s.deployment;
      const tokens = s.points.reduce((sum, p) => sum + ((p.promptTokensPerSec ?? 0) + (p.generationTokensPerSec ?? 0)) * s.stepSeconds, 0);
      tokensByDeployment[deployment] = (tokensByDeployment[deployment] ?? 0) + tokens;
    }
    return { rows, utilisation, tokensByDeployment, dataPoints: daily.length, warnings: errors };
  }

  async function gatherPerformance(w: AgentWindow) {
    const { sources, errors } = await collectKinds(['scrape', 'prometheus']);
    const samples = await ch.metricSamples({ metrics: VLLM_METRICS, sources: sources.map((s) => s.id), from: w.from, to: w.to, stepSeconds: w.stepSeconds });
    const series = buildPerformanceSeries(samples, w.stepSeconds).map((s) => ({ ...s, points: s.points.slice(-MAX_POINTS) }));
    if (!series.length) throw noData('performance', w, errors, 'vLLM metrics');
    return { series, dataPoints: samples.length, warnings: errors };
  }

  async function gatherResource(w: AgentWindow) {
    const { sources, errors } = await collectKinds(['scrape', 'prometheus']);
    const series = await resourceSeries(w, sources);
    if (!series.length) throw noData('resource', w, errors, 'GPU or host metrics');
    return { series, dataPoints: series.reduce((n, s) => n + s.points.length, 0), warnings: errors };
  }

  async function gatherApplication(w: AgentWindow & { judge: string; promptVersions: Parameters<typeof ch.versionAggregates>[0]['promptVersions'] }) {
    const versions = await ch.query<{ deployment: string; model_version: string; last_ts: string }>(
      `SELECT deployment, model_version, max(toUnixTimestamp(interaction_ts)) AS last_ts FROM ${ch.db}.scores
       WHERE interaction_ts >= toDateTime(${unixSeconds(w.from)}) AND interaction_ts <= toDateTime(${unixSeconds(w.to)})
       GROUP BY deployment, model_version ORDER BY deployment, last_ts`,
    );
    const out: DeploymentQuality[] = [];
    for (const v of versions.filter((x) => ID_PATTERN.test(x.deployment) && ID_PATTERN.test(x.model_version))) {
      let d = out.find((x) => x.deployment === v.deployment);
      if (!d) {
        const gates = await db.query<{ candidate_version: string; decision: string; decided_at: Date }>(
          'SELECT candidate_version, decision, decided_at FROM gate_decisions WHERE deployment = $1 AND decided_at >= $2 ORDER BY decided_at',
          [v.deployment, w.from],
        );
        d = {
          deployment: v.deployment,
          versions: [],
          gates: gates.rows.map((g) => ({ candidate: g.candidate_version, decision: g.decision, decidedAt: g.decided_at.toISOString() })),
        };
        out.push(d);
      }
      const agg = await ch.versionAggregates({
        deployment: v.deployment,
        version: v.model_version,
        judge: w.judge,
        promptVersions: w.promptVersions,
        from: w.from,
        to: new Date(Date.parse(w.to) + 1000).toISOString(),
      });
      d.versions.push({ version: v.model_version, stats: toVersionStats(agg), lastTs: new Date(Number(v.last_ts) * 1000).toISOString() });
    }
    if (!out.length) throw noData('application', w, [], 'scored interactions');
    return { deployments: out.slice(0, 100), dataPoints: versions.length, warnings: [] as string[] };
  }

  /** The LLM's narrative of an agent's findings (numbers must come from the findings). */
  async function narrateWithLlm(input: { agent: AgentName | 'review'; findings: Finding[]; totals?: Record<string, number> }): Promise<Narrative> {
    if (!deps.llm) throw ApplicationFailure.create({ type: 'LlmDisabled', nonRetryable: true, message: 'no LLM is configured on this worker' });
    const prompt = renderNarrativePrompt(input.agent, input.findings, input.totals);
    const r = await deps.llm.json({ ...prompt, schema: narrativeSchema, maxTokens: 1500 });
    const invented = numbersNotInData([r.value.summary, ...r.value.insights.map((i) => i.narrative)], prompt.user);
    if (invented.length) {
      throw ApplicationFailure.create({ type: 'LlmInvalidReply', message: `the narrative cites numbers that are not in the analysis: ${invented.slice(0, 5).join(', ')}` });
    }
    const insights = input.findings.map((_, i) => r.value.insights.find((x) => x.finding === i)?.narrative ?? '');
    return { summary: r.value.summary, insights, generatedBy: `groq:${r.model}`, promptVersion: AGENT_PROMPT_VERSION };
  }

  async function answerWithLlm(input: { agent: AgentName; question: string; findings: Finding[]; totals?: Record<string, number> }): Promise<{ answer: string; generatedBy: string }> {
    if (!deps.llm) throw ApplicationFailure.create({ type: 'LlmDisabled', nonRetryable: true, message: 'no LLM is configured on this worker' });
    const prompt = renderAskPrompt(input.agent, input.question, input.findings, input.totals);
    const r = await deps.llm.json({ ...prompt, schema: answerSchema, maxTokens: 800 });
    const invented = numbersNotInData([r.value.answer], prompt.user);
    if (invented.length) {
      throw ApplicationFailure.create({ type: 'LlmInvalidReply', message: `the answer cites numbers that are not in the analysis: ${invented.slice(0, 5).join(', ')}` });
    }
    return { answer: r.value.answer, generatedBy: `groq:${r.model}` };
  }

  async function recordAgentRun(run: {
    id: string;
    agent: AgentName;
    reviewId?: string;
    status: 'ok' | 'failed';
    error?: string;
    window: AgentWindow;
    dataPoints: number;
    findings: Finding[];
    totals?: Record<string, number>;
    summary: string;
    narrative?: Narrative;
  }): Promise<void> {
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO agent_runs (id, agent, review_id, status, error, window_from, window_to, data_points, findings, totals,
           summary, narrative, narrative_by, prompt_version)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error, window_from = EXCLUDED.window_from,
           window_to = EXCLUDED.window_to, data_points = EXCLUDED.data_points, findings = EXCLUDED.findings,
           totals = EXCLUDED.totals, summary = EXCLUDED.summary, narrative = EXCLUDED.narrative,
           narrative_by = EXCLUDED.narrative_by, prompt_version = EXCLUDED.prompt_version, finished_at = now()`,
        [
          run.id,
          run.agent,
          run.reviewId ?? null,
          run.status,
          run.error ?? null,
          Number.isNaN(Date.parse(run.window.from)) ? null : run.window.from,
          Number.isNaN(Date.parse(run.window.to)) ? null : run.window.to,
          run.dataPoints,
          JSON.stringify(run.findings),
          run.totals ? JSON.stringify(run.totals) : null,
          run.summary,
          run.narrative ? JSON.stringify(run.narrative) : null,
          run.narrative?.generatedBy ?? null,
          run.narrative?.promptVersion ?? null,
        ],
      );
      await client.query('DELETE FROM recommendations WHERE run_id = $1', [run.id]);
      for (const [i, f] of run.findings.entries()) {
        await client.query(
          `INSERT INTO recommendations (run_id, idx, agent, kind, subject, severity, title, recommendation, narrative, evidence,
             monthly_saving_usd, annual_saving_usd, impact, confidence, narrative_by)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
          [
            run.id,
            i,
            run.agent,
            f.kind,
            f.subject,
            f.severity,
            f.title,
            f.recommendation,
            run.narrative?.insights[i] || null,
            JSON.stringify(f.evidence),
            f.monthlySavingUsd ?? null,
            f.annualSavingUsd ?? null,
            f.impact ?? null,
            f.confidence,
            run.narrative?.generatedBy ?? null,
          ],
        );
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  async function recordReview(r: { id: string; agents: AgentName[]; failed: AgentName[]; summary: string; summaryBy: string; errors: Record<string, string> }): Promise<void> {
    await db.query(
      `INSERT INTO reviews (id, agents, failed_agents, summary, summary_by, errors) VALUES ($1,$2,$3,$4,$5,$6)
       ON CONFLICT (id) DO UPDATE SET agents = EXCLUDED.agents, failed_agents = EXCLUDED.failed_agents, summary = EXCLUDED.summary,
         summary_by = EXCLUDED.summary_by, errors = EXCLUDED.errors, finished_at = now()`,
      [r.id, r.agents, r.failed, r.summary, r.summaryBy, JSON.stringify(r.errors)],
    );
  }

  return {
    listInfraSources,
    collectInfraSource,
    gatherCost,
    gatherPerformance,
    gatherResource,
    gatherApplication,
    narrateWithLlm,
    answerWithLlm,
    recordAgentRun,
    recordReview,
  };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>;
