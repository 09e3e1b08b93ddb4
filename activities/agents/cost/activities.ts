/**
 * The cost agent's activities (LLM integration point 1): FOCUS rows, utilisation and tokens
 * served are read here and turned into findings here, so only findings and totals enter the
 * workflow's history, however long the export.
 */
import { boundAnalysis } from '../../../domain/agents/bounded.js';
import { executiveSummary } from '../../../domain/agents/cost/executive-summary.js';
import { costFindings } from '../../../domain/agents/cost/findings.js';
import { INSTANCE_TYPES } from '../../../domain/agents/instance-catalog.js';
import type { AgentAnalysis, AgentWindow, CostRow, ResourceUtilisation } from '../../../domain/agents/types.js';
import { counterIncreases } from '../../../domain/infra/series-builder.js';
import type { ActivityDeps } from '../../deps.js';
import type { createInfraActivities } from '../../infra/activities.js';
import { hostMap, noData, resourceSeries, utilisationOf } from '../metrics.js';

const TOKEN_COUNTERS = ['vllm:prompt_tokens_total', 'vllm:generation_tokens_total'];

/** Rows the pre-1.1 `gatherCost` activity returned at most (kept for workflows started before). */
const LEGACY_MAX_COST_ROWS = 5000;

interface CostInputs {
  rows: CostRow[];
  utilisation: ResourceUtilisation[];
  tokensByDeployment: Record<string, number>;
  dataPoints: number;
  warnings: string[];
}

export function createCostActivities(deps: ActivityDeps, infra: ReturnType<typeof createInfraActivities>) {
  const { ch } = deps;

  async function costInputs(w: AgentWindow): Promise<CostInputs> {
    const { errors } = await infra.collectKinds(['focus']);
    const metricSources = await infra.listInfraSources(['scrape', 'prometheus']);
    const daily = await ch.dailyCosts(w.from, w.to);
    if (!daily.length) throw noData('cost', w, errors, 'cost data (FOCUS rows)');
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
    // Utilisation over the last day at a fine step (the cost window's step is far too coarse).
    const recent = {
      from: new Date(Math.max(Date.parse(w.from), Date.parse(w.to) - 86_400_000)).toISOString(),
      to: w.to,
      stepSeconds: 300,
    };
    const utilisation = utilisationOf(await resourceSeries(ch, recent, metricSources));
    // Tokens served: the increase of the token counters over the window (resets and gaps included).
    const served = counterIncreases(
      await ch.metricSamples({
        metrics: TOKEN_COUNTERS,
        sources: metricSources.map((s) => s.id),
        from: w.from,
        to: w.to,
        stepSeconds: w.stepSeconds,
      }),
      TOKEN_COUNTERS,
    );
    // Tokens a metrics source served count for the deployment its host is tagged with in the cost
    // data (or for the deployment named like the source).
    const deploymentOf = new Map(rows.filter((r) => r.tags.deployment).map((r) => [r.resourceId, r.tags.deployment!]));
    const hosts = hostMap(metricSources);
    const tokensByDeployment: Record<string, number> = {};
    for (const [source, tokens] of served) {
      const resourceId = hosts[source]?.resourceId;
      const deployment = (resourceId && deploymentOf.get(resourceId)) || source;
      tokensByDeployment[deployment] = (tokensByDeployment[deployment] ?? 0) + tokens;
    }
    return { rows, utilisation, tokensByDeployment, dataPoints: daily.length, warnings: errors };
  }

  /** Read the window's cost data and compute the cost findings, totals and executive summary. */
  async function analyseCost(w: AgentWindow): Promise<AgentAnalysis> {
    const g = await costInputs(w);
    const { findings, totals } = costFindings({
      rows: g.rows,
      utilisation: g.utilisation,
      catalog: INSTANCE_TYPES,
      tokensByDeployment: g.tokensByDeployment,
      window: { from: w.from, to: w.to },
    });
    const days = new Set(g.rows.map((r) => r.chargePeriodStart.slice(0, 10))).size;
    return boundAnalysis({
      findings,
      totals: { ...totals, days },
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
    const g = await costInputs(w);
    return { ...g, rows: g.rows.slice(0, LEGACY_MAX_COST_ROWS) };
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
