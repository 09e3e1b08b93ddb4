/** Reading the stored metric series the cost and resource agents share. */
import type { AgentName, AgentWindow, ResourceSeries, ResourceUtilisation } from '../../domain/agents/types.js';
import { failure } from '../../common/failures.js';
import { isShare } from '../../domain/agents/resource/host-stats.js';
import { buildResourceSeries, RESOURCE_METRICS } from '../../domain/infra/series-builder.js';
import type { InfraSource } from '../infra/activities.js';
import type { ClickHouseStore } from '../storage/clickhouse/store.js';

/** Upper bound of points per series an agent keeps (the last ones). */
export const MAX_POINTS = 400;

export function noData(agent: AgentName, w: AgentWindow, errors: string[], what: string) {
  const why = errors.length ? `; source errors: ${errors.join('; ')}` : '';
  return failure('NoData', `${agent} agent: no ${what} between ${w.from} and ${w.to}${why}`);
}

/** Resource id and instance type of each metrics source, to price recommendations. */
export function hostMap(sources: InfraSource[]): Record<string, { resourceId?: string; instanceType?: string }> {
  return Object.fromEntries(
    sources.flatMap((s) =>
      s.config.kind === 'focus' ? [] : [[s.id, { resourceId: s.config.resourceId, instanceType: s.config.instanceType }]],
    ),
  );
}

/** The window's samples of `metrics` from `sources`, one per step. */
export function windowSamples(ch: ClickHouseStore, w: AgentWindow, metrics: string[], sources: InfraSource[]) {
  return ch.metricSamples({ metrics, sources: sources.map((s) => s.id), from: w.from, to: w.to, stepSeconds: w.stepSeconds });
}

export async function resourceSeries(ch: ClickHouseStore, w: AgentWindow, sources: InfraSource[]): Promise<ResourceSeries[]> {
  const samples = await windowSamples(ch, w, RESOURCE_METRICS, sources);
  return buildResourceSeries(samples, w.stepSeconds, hostMap(sources)).map((s) => ({ ...s, points: s.points.slice(-MAX_POINTS) }));
}

/** Utilisation per host with a resource id; readings outside [0, 1] are left out (no "idle" from a negative reading). */
export function utilisationOf(series: ResourceSeries[]): ResourceUtilisation[] {
  return series
    .filter((s) => s.resourceId)
    .map((s) => {
      const u = s.points
        .map((p) => p.gpuUtil ?? p.cpuUtil)
        .filter(isShare)
        .sort((a, b) => a - b);
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
