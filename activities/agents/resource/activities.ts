/** The resource agent's activities (LLM integration point 3): GPU and host series and their findings. */
import { boundAnalysis, boundLines, SOURCE_ERRORS_LISTED } from '../../../domain/agents/bounded.js';
import { INSTANCE_TYPES } from '../../../domain/agents/instance-catalog.js';
import { resourceFindingsAccumulator } from '../../../domain/agents/resource/findings.js';
import type { AgentAnalysis, AgentWindow, ResourceSeries } from '../../../domain/agents/types.js';
import { RESOURCE_METRICS } from '../../../domain/infra/series-builder.js';
import type { ActivityDeps } from '../../deps.js';
import type { createInfraActivities } from '../../infra/activities.js';
import { eachSeries, noData } from '../metrics.js';

const WHAT = 'GPU and host metrics';

export function createResourceActivities(deps: ActivityDeps, infra: ReturnType<typeof createInfraActivities>) {
  const { ch } = deps;

  /** The window's series per GPU host (≤ MAX_POINTS points each), read in pages and handed to `each`. */
  async function readResource(w: AgentWindow, each: (series: ResourceSeries[]) => void) {
    const { sources, errors } = await infra.collectKinds(['scrape', 'prometheus']);
    let n = 0;
    let points = 0;
    const read = await eachSeries(
      ch,
      'resource',
      w,
      sources,
      (series) => {
        n += series.length;
        for (const s of series) points += s.points.length;
        each(series);
      },
      { metrics: RESOURCE_METRICS, what: WHAT, progress: { agent: 'resource' } },
    );
    if (!n) throw noData('resource', w, errors, WHAT);
    return { dataPoints: points, warnings: [...read.warnings, ...boundLines(errors, SOURCE_ERRORS_LISTED)] };
  }

  /** The window's series per GPU host (≤ MAX_POINTS points each; for workflows recorded before `analyseResource`). */
  async function gatherResource(w: AgentWindow): Promise<{ series: ResourceSeries[]; dataPoints: number; warnings: string[] }> {
    const series: ResourceSeries[] = [];
    const r = await readResource(w, (page) => {
      for (const s of page) series.push(s);
    });
    return { series, ...r };
  }

  /** The findings of every host, computed page by page (a host's points are dropped once its own findings are made). */
  async function analyseResource(w: AgentWindow): Promise<AgentAnalysis> {
    const acc = resourceFindingsAccumulator(INSTANCE_TYPES);
    const r = await readResource(w, (page) => acc.add(page));
    return boundAnalysis({ findings: acc.findings(), dataPoints: r.dataPoints, warnings: r.warnings });
  }

  return { analyseResource, gatherResource };
}
