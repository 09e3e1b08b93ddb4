/**
 * The agents' analysis as workflows recorded before FINDINGS_IN_ACTIVITIES ran it: gather
 * (an activity returning rows or series), then the findings computed in the workflow. Only
 * replays of such histories take these paths; drop them (with `deprecatePatch`) once no
 * workflow from before the patch is kept.
 */
import { applicationFindings } from '../../domain/agents/application/findings.js';
import { executiveSummary } from '../../domain/agents/cost/executive-summary.js';
import { costFindings } from '../../domain/agents/cost/findings.js';
import { INSTANCE_TYPES } from '../../domain/agents/instance-catalog.js';
import { performanceFindings } from '../../domain/agents/performance/findings.js';
import { resourceFindings } from '../../domain/agents/resource/findings.js';
import type { AgentAnalysis, AgentWindow } from '../../domain/agents/types.js';
import type { CycleSettings } from '../../domain/collector/collection.js';
import { analysisActs } from './run-agent.js';

export async function legacyCost(w: AgentWindow): Promise<AgentAnalysis> {
  const g = await analysisActs.gatherCost(w);
  const { findings, totals } = costFindings({
    rows: g.rows,
    utilisation: g.utilisation,
    catalog: INSTANCE_TYPES,
    tokensByDeployment: g.tokensByDeployment,
    window: { from: w.from, to: w.to },
  });
  return { findings, totals: { ...totals }, summary: executiveSummary(findings, totals), dataPoints: g.dataPoints, warnings: g.warnings };
}

export async function legacyPerformance(w: AgentWindow): Promise<AgentAnalysis> {
  const g = await analysisActs.gatherPerformance(w);
  return { findings: g.series.flatMap((s) => performanceFindings(s)), dataPoints: g.dataPoints, warnings: g.warnings };
}

export async function legacyResource(w: AgentWindow): Promise<AgentAnalysis> {
  const g = await analysisActs.gatherResource(w);
  return { findings: resourceFindings(g.series, INSTANCE_TYPES), dataPoints: g.dataPoints, warnings: g.warnings };
}

export async function legacyApplication(w: AgentWindow, s: CycleSettings): Promise<AgentAnalysis> {
  const g = await analysisActs.gatherApplication({ ...w, judge: s.judge, promptVersions: s.promptVersions });
  return { findings: applicationFindings(g.deployments), dataPoints: g.dataPoints, warnings: g.warnings };
}
