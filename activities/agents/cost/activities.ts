/**
 * The cost agent's activities (LLM integration point 1): FOCUS rows, utilisation and tokens
 * served are read here and turned into findings here, so only findings and totals enter the
 * workflow's history, however long the export.
 */
import { boundAnalysis, boundLines, SOURCE_ERRORS_LISTED } from '../../../domain/agents/bounded.js';
import { executiveSummary } from '../../../domain/agents/cost/executive-summary.js';
import { costFindingsFromSummary } from '../../../domain/agents/cost/findings.js';
import { COST_RULES } from '../../../domain/agents/cost/rules.js';
import type { CostSummary } from '../../../domain/agents/cost/summary.js';
import { INSTANCE_TYPES } from '../../../domain/agents/instance-catalog.js';
import type { AgentAnalysis, AgentWindow, CostRow, ResourceUtilisation } from '../../../domain/agents/types.js';
import { counterAccumulator, RESOURCE_METRICS } from '../../../domain/infra/series-builder.js';
import type { ActivityDeps } from '../../deps.js';
import type { createInfraActivities } from '../../infra/activities.js';
import { whileReading } from '../../heartbeat.js';
import { eachSeries, hostMap, noData, readMetricPages, utilisationOf, windowStep } from '../metrics.js';

const TOKEN_COUNTERS = ['vllm:prompt_tokens_total', 'vllm:generation_tokens_total'];

/** Rows the pre-1.1 `gatherCost` activity returned at most (kept for workflows started before). */
const LEGACY_MAX_COST_ROWS = 5000;
/** Services whose daily spend is checked for anomalies at most: those with the most spend. */
export const MAX_COST_SERVICES = 200;
/** Deployments whose cost per token is computed at most: those with the most spend. */
export const MAX_COST_DEPLOYMENTS = 1000;

interface CostInputs {
  rows: CostRow[];
  utilisation: ResourceUtilisation[];
  tokensByDeployment: Record<string, number>;
  dataPoints: number;
  warnings: string[];
}

interface AnalysisInputs {
  /** What the findings need of the window's cost rows, summed by ClickHouse (undefined: no row on the window's days). */
  summary: CostSummary | undefined;
  utilisation: ResourceUtilisation[];
  tokensByDeployment: Record<string, number>;
  /** UTC days with cost rows, and rows per day, resource, type, service, region and SKU. */
  days: number;
  dataPoints: number;
  warnings: string[];
}

const fmt = (n: number) => n.toLocaleString('en-US');

export function createCostActivities(deps: ActivityDeps, infra: ReturnType<typeof createInfraActivities>) {
  const { ch } = deps;

  /**
   * The cost rows of the window reduced by ClickHouse (totals, per deployment, per service and
   * day, per host resource: thousands of rows however many the window holds), the utilisation
   * of the hosts over the last day and the tokens each served, read in pages.
   */
  async function analysisInputs(w: AgentWindow): Promise<AnalysisInputs> {
    const { errors } = await infra.collectKinds(['focus']);
    const metricSources = await infra.listInfraSources(['scrape', 'prometheus']);
    const warnings: string[] = [];
    const reading = <T>(stage: string, read: () => Promise<T>) => whileReading({ agent: 'cost', stage }, read);
    const totals = await reading('cost totals', () => ch.costTotals(w));
    if (!totals.dailyRows) throw noData('cost', w, errors, 'cost data (FOCUS rows)');
    const hosts = hostMap(metricSources);
    const ids = Object.values(hosts).flatMap((h) => (h.resourceId ? [h.resourceId] : []));
    const resources = await reading('cost of the hosts', () => ch.costOfResources({ ...w, ids }));
    let summary: CostSummary | undefined;
    if (totals.rowsInWindow > 0) {
      const deploymentCost = await reading('cost per deployment', () => ch.costByDeployment({ ...w, limit: MAX_COST_DEPLOYMENTS }));
      const serviceDays = await reading('spend per service and day', () =>
        ch.costByServiceDay({ ...w, limit: MAX_COST_SERVICES, trailingDays: COST_RULES.trailingDays }),
      );
      summary = {
        firstStart: totals.firstDay * 1000,
        lastEnd: (totals.lastDay + 86_400) * 1000,
        spendUsd: totals.spendUsd,
        resources: resources.filter((r) => r.rowsInWindow > 0).map(({ rowsInWindow: _n, taggedDeployment: _d, ...r }) => r),
        deploymentCost,
        serviceDays,
        trailingDays: COST_RULES.trailingDays,
      };
      if (totals.deployments > MAX_COST_DEPLOYMENTS)
        warnings.push(
          `Cost per token: the ${fmt(MAX_COST_DEPLOYMENTS)} deployments with the most spend were analysed; ` +
            `${fmt(totals.deployments - MAX_COST_DEPLOYMENTS)} others were not (the totals count them all).`,
        );
      if (totals.services > MAX_COST_SERVICES)
        warnings.push(
          `Spend anomalies: the ${fmt(MAX_COST_SERVICES)} services with the most spend were checked; ` +
            `${fmt(totals.services - MAX_COST_SERVICES)} others were not (the totals count them all).`,
        );
    }
    // Utilisation over the last day at a fine step (the cost window's step is far too coarse).
    const recent = {
      from: new Date(Math.max(Date.parse(w.from), Date.parse(w.to) - 86_400_000)).toISOString(),
      to: w.to,
      stepSeconds: 300,
    };
    const utilisation: ResourceUtilisation[] = [];
    const used = await eachSeries(
      ch,
      'resource',
      recent,
      metricSources,
      (series) => {
        for (const u of utilisationOf(series)) utilisation.push(u);
      },
      {
        metrics: RESOURCE_METRICS,
        what: 'Utilisation (GPU and host metrics)',
        progress: { agent: 'cost' },
      },
    );
    warnings.push(...used.warnings);
    // Tokens served: the increase of the token counters over the window (resets and gaps included).
    const tokenStep = windowStep(w, 'Tokens served (vLLM counters)');
    if (tokenStep.warning) warnings.push(tokenStep.warning);
    const acc = counterAccumulator(TOKEN_COUNTERS);
    const read = await readMetricPages(
      ch,
      { metrics: TOKEN_COUNTERS, sources: metricSources.map((s) => s.id), from: w.from, to: w.to, stepSeconds: tokenStep.stepSeconds },
      { add: (samples) => acc.add(samples), flush: () => undefined },
      { what: 'Tokens served (vLLM counters)', progress: { agent: 'cost' } },
    );
    warnings.push(...read.warnings);
    // Tokens a metrics source served count for the deployment its host is tagged with in the cost
    // data (or for the deployment named like the source).
    const deploymentOf = new Map(resources.flatMap((r) => (r.taggedDeployment ? [[r.resourceId, r.taggedDeployment] as const] : [])));
    const tokensByDeployment: Record<string, number> = {};
    for (const [source, tokens] of acc.result()) {
      const resourceId = hosts[source]?.resourceId;
      const deployment = (resourceId && deploymentOf.get(resourceId)) || source;
      tokensByDeployment[deployment] = (tokensByDeployment[deployment] ?? 0) + tokens;
    }
    warnings.push(...boundLines(errors, SOURCE_ERRORS_LISTED));
    return { summary, utilisation, tokensByDeployment, days: totals.days, dataPoints: totals.dailyRows, warnings };
  }

  /** Read the window's cost data and compute the cost findings, totals and executive summary. */
  async function analyseCost(w: AgentWindow): Promise<AgentAnalysis> {
    const g = await analysisInputs(w);
    const { findings, totals } = costFindingsFromSummary({
      summary: g.summary,
      utilisation: g.utilisation,
      catalog: INSTANCE_TYPES,
      tokensByDeployment: g.tokensByDeployment,
      window: { from: w.from, to: w.to },
    });
    return boundAnalysis({
      findings,
      totals: { ...totals, days: g.days },
      summary: executiveSummary(findings, totals),
      dataPoints: g.dataPoints,
      warnings: g.warnings,
    });
  }

  /**
   * The inputs of the findings, as workflows started before findings moved into activities expect
   * them (bounded: the first LEGACY_MAX_COST_ROWS daily rows). New runs use `analyseCost`.
   */
  async function gatherCost(w: AgentWindow): Promise<CostInputs> {
    const g = await analysisInputs(w);
    const daily = await ch.dailyCosts(w.from, w.to, { limit: LEGACY_MAX_COST_ROWS });
    const rows: CostRow[] = daily.map((r) => ({
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
      tags: parseTags(r.tags),
    }));
    return { rows, utilisation: g.utilisation, tokensByDeployment: g.tokensByDeployment, dataPoints: g.dataPoints, warnings: g.warnings };
  }

  return { analyseCost, gatherCost };
}

function parseTags(raw: string): Record<string, string> {
  try {
    return JSON.parse(raw) as Record<string, string>;
  } catch {
    return {};
  }
}
