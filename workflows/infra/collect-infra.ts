/** Infrastructure collection: every registered source (FOCUS, /metrics, Prometheus) read into ClickHouse. */
import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { InfraActivities } from '../../activities/infra/activities.js';
import { SA } from '../../common/search-attributes.js';
import { agentOptions } from '../options.js';

const acts = proxyActivities<InfraActivities>(agentOptions);

export async function collectInfra(): Promise<Array<{ id: string; rows: number; bad: number; error?: string }>> {
  upsertSearchAttributes([{ key: SA.kind, value: 'collect-infra' }]);
  const sources = await acts.listInfraSources();
  return Promise.all(sources.map((s) => acts.collectInfraSource({ id: s.id })));
}
