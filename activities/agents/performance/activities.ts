/** The performance agent's activities (LLM integration point 2): vLLM series and their findings. */
import { boundAnalysis, boundLines, SOURCE_ERRORS_LISTED } from '../../../domain/agents/bounded.js';
import { performanceFindings } from '../../../domain/agents/performance/findings.js';
import type { AgentAnalysis, AgentWindow, Finding, PerformanceSeries } from '../../../domain/agents/types.js';
import { VLLM_METRICS } from '../../../domain/infra/series-builder.js';
import type { ActivityDeps } from '../../deps.js';
import type { createInfraActivities } from '../../infra/activities.js';
import { eachSeries, noData } from '../metrics.js';

const WHAT = 'vLLM metrics';

export function createPerformanceActivities(deps: ActivityDeps, infra: ReturnType<typeof createInfraActivities>) {
  const { ch } = deps;

  /** The window's vLLM series per deployment (≤ MAX_POINTS points each), read in pages and handed to `each`. */
  async function readPerformance(w: AgentWindow, each: (series: PerformanceSeries[]) => void) {
    const { sources, errors } = await infra.collectKinds(['scrape', 'prometheus']);
    let n = 0;
    const read = await eachSeries(
      ch,
      'performance',
      w,
      sources,
      (series) => {
        n += series.length;
        each(series);
      },
      { metrics: VLLM_METRICS, what: WHAT, progress: { agent: 'performance' } },
    );
    if (!n) throw noData('performance', w, errors, WHAT);
    return { dataPoints: read.samples, warnings: [...read.warnings, ...boundLines(errors, SOURCE_ERRORS_LISTED)] };
  }

  /** The window's vLLM series per deployment (≤ MAX_POINTS points each; for workflows recorded before `analysePerformance`). */
  async function gatherPerformance(w: AgentWindow): Promise<{ series: PerformanceSeries[]; dataPoints: number; warnings: string[] }> {
    const series: PerformanceSeries[] = [];
    const r = await readPerformance(w, (page) => {
      for (const s of page) series.push(s);
    });
    return { series, ...r };
  }

  /** The findings of every deployment's series, computed page by page (only findings are kept). */
  async function analysePerformance(w: AgentWindow): Promise<AgentAnalysis> {
    const findings: Finding[] = [];
    const r = await readPerformance(w, (page) => {
      for (const s of page) for (const f of performanceFindings(s)) findings.push(f);
    });
    return boundAnalysis({ findings, dataPoints: r.dataPoints, warnings: r.warnings });
  }

  return { analysePerformance, gatherPerformance };
}
