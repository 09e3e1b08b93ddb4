/** The resource agent's activities (LLM integration point 3): GPU and host series and their findings. */
import { boundAnalysis } from '../../../domain/agents/bounded.js';
import { INSTANCE_TYPES } from '../../../domain/agents/instance-catalog.js';
import { resourceFindings } from '../../../domain/agents/resource/findings.js';
import type { AgentAnalysis, AgentWindow, ResourceSeries } from '../../../domain/agents/types.js';
import type { ActivityDeps } from '../../deps.js';
import type { createInfraActivities } from '../../infra/activities.js';
import { noData, resourceSeries } from '../metrics.js';

export function createResourceActivities(deps: ActivityDeps, infra: ReturnType<typeof createInfraActivities>) {
  const { ch } = deps;

  /** The window's series per GPU host (≤ MAX_POINTS points each). */
  async function gatherResource(w: AgentWindow): Promise<{ series: ResourceSeries[]; dataPoints: number; warnings: string[] }> {
    const { sources, errors } = await infra.collectKinds(['scrape', 'prometheus']);
    const series = await resourceSeries(ch, w, sources);
    if (!series.length) throw noData('resource', w, errors, 'GPU or host metrics');
    return { series, dataPoints: series.reduce((n, s) => n + s.points.length, 0), warnings: errors };
  }

  async function analyseResource(w: AgentWindow): Promise<AgentAnalysis> {
    const g = await gatherResource(w);
    return boundAnalysis({ findings: resourceFindings(g.series, INSTANCE_TYPES), dataPoints: g.dataPoints, warnings: g.warnings });
  }

  return { analyseResource, gatherResource };
}
