/** The performance agent's activities (LLM integration point 2): vLLM series and their findings. */
import { boundAnalysis } from '../../../domain/agents/bounded.js';
import { performanceFindings } from '../../../domain/agents/performance/findings.js';
import type { AgentAnalysis, AgentWindow, PerformanceSeries } from '../../../domain/agents/types.js';
import { buildPerformanceSeries, VLLM_METRICS } from '../../../domain/infra/series-builder.js';
import type { ActivityDeps } from '../../deps.js';
import type { createInfraActivities } from '../../infra/activities.js';
import { MAX_POINTS, noData, windowSamples } from '../metrics.js';

export function createPerformanceActivities(deps: ActivityDeps, infra: ReturnType<typeof createInfraActivities>) {
  const { ch } = deps;

  /** The window's vLLM series per deployment (≤ MAX_POINTS points each). */
  async function gatherPerformance(w: AgentWindow): Promise<{ series: PerformanceSeries[]; dataPoints: number; warnings: string[] }> {
    const { sources, errors } = await infra.collectKinds(['scrape', 'prometheus']);
    const samples = await windowSamples(ch, w, VLLM_METRICS, sources);
    const series = buildPerformanceSeries(samples, w.stepSeconds).map((s) => ({ ...s, points: s.points.slice(-MAX_POINTS) }));
    if (!series.length) throw noData('performance', w, errors, 'vLLM metrics');
    return { series, dataPoints: samples.length, warnings: errors };
  }

  async function analysePerformance(w: AgentWindow): Promise<AgentAnalysis> {
    const g = await gatherPerformance(w);
    return boundAnalysis({ findings: g.series.flatMap((s) => performanceFindings(s)), dataPoints: g.dataPoints, warnings: g.warnings });
  }

  return { analysePerformance, gatherPerformance };
}
