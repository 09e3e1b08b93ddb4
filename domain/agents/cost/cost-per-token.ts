/**
 * The cost agent's 'cost-per-token' findings: cost per million tokens served, per deployment
 * (Tags `deployment`), with deployments at ≥ 2× the cheapest one flagged with their annualised
 * excess. Pure and workflow-safe: no I/O, no clock, no randomness, no Node APIs.
 */
import { formatUsd } from '../../../common/format.js';
import type { ObservedPeriod, Ranked } from './period.js';
import { COST_RULES, formatUnitUsd, round2, round4, severityForUsd } from './rules.js';

/** One cost-per-token finding per deployment with cost in the period, by deployment name. */
export function costPerTokenFindings(period: ObservedPeriod, input: { tokensByDeployment: Record<string, number> }): Ranked[] {
  const { dayFactor, monthlyOf, deploymentCost } = period;
  const ranked: Ranked[] = [];
  const deployments = [...deploymentCost.keys()].sort();
  const unit = new Map<string, number>();
  for (const d of deployments) {
    const tokens = input.tokensByDeployment[d] ?? 0;
    if (tokens > 0) unit.set(d, ((deploymentCost.get(d) ?? 0) / tokens) * 1e6);
  }
  let cheapest: { deployment: string; cpm: number } | undefined;
  for (const [d, cpm] of unit) if (!cheapest || cpm < cheapest.cpm) cheapest = { deployment: d, cpm };
  for (const d of deployments) {
    const cost = deploymentCost.get(d) ?? 0;
    const tokens = input.tokensByDeployment[d] ?? 0;
    const cpm = unit.get(d);
    const confidence = round2(0.4 + 0.5 * dayFactor);
    if (cpm === undefined) {
      if (cost <= 0) continue;
      const annual = round2(round2(monthlyOf(cost)) * 12);
      ranked.push({
        stakeUsd: annual,
        finding: {
          kind: 'cost-per-token',
          title: `${d} cost ${formatUsd(cost)} but no tokens served were recorded`,
          severity: severityForUsd(annual),
          subject: d,
          evidence: { cost_usd: round2(cost), tokens_served: 0, annual_cost_usd: annual },
          recommendation: `Check ${d}'s token accounting; if it really serves no traffic, stop its resources (${formatUsd(annual)} a year).`,
          confidence: round2(confidence * 0.6),
        },
      });
      continue;
    }
    const base = {
      cost_usd: round2(cost),
      tokens_served: tokens,
      cost_per_million_tokens_usd: round4(cpm),
    };
    const flagged = cheapest !== undefined && cheapest.deployment !== d && cpm >= COST_RULES.costPerTokenFlagRatio * cheapest.cpm;
    if (!flagged || !cheapest) {
      ranked.push({
        stakeUsd: 0,
        finding: {
          kind: 'cost-per-token',
          title: `${d} costs ${formatUnitUsd(cpm)} per million tokens served`,
          severity: 'info',
          subject: d,
          evidence: {
            ...base,
            ...(cheapest
              ? {
                  cheapest_deployment: cheapest.deployment,
                  cheapest_cost_per_million_tokens_usd: round4(cheapest.cpm),
                  ratio_to_cheapest: round2(cpm / cheapest.cpm),
                }
              : {}),
          },
          recommendation:
            cheapest && cheapest.deployment === d && unit.size > 1
              ? `${d} has the lowest unit cost; use it as the reference for the other deployments.`
              : `No action needed: ${d}'s unit cost is within ${COST_RULES.costPerTokenFlagRatio}× of the cheapest deployment.`,
          confidence,
        },
      });
      continue;
    }
    const ratio = cpm / cheapest.cpm;
    const excess = cost - (cheapest.cpm * tokens) / 1e6;
    const monthlyExcess = round2(monthlyOf(excess));
    const annualExcess = round2(monthlyExcess * 12);
    ranked.push({
      stakeUsd: annualExcess,
      finding: {
        kind: 'cost-per-token',
        title: `${d} costs ${formatUnitUsd(cpm)} per million tokens, ${ratio.toFixed(1)}× ${cheapest.deployment} (${formatUnitUsd(cheapest.cpm)})`,
        severity: severityForUsd(annualExcess),
        subject: d,
        evidence: {
          ...base,
          cheapest_deployment: cheapest.deployment,
          cheapest_cost_per_million_tokens_usd: round4(cheapest.cpm),
          ratio_to_cheapest: round2(ratio),
          excess_monthly_usd: monthlyExcess,
          excess_annual_usd: annualExcess,
        },
        recommendation:
          `Bring ${d}'s unit cost down: batch more requests per GPU, move it to a smaller or cheaper GPU, or consolidate it onto ${cheapest.deployment}'s capacity. ` +
          `At ${cheapest.deployment}'s unit cost it would cost ${formatUsd(monthlyExcess)} a month less (${formatUsd(annualExcess)} a year).`,
        impact: `${ratio.toFixed(1)}× the cheapest deployment's cost per token`,
        confidence,
      },
    });
  }
  return ranked;
}
