/** Infrastructure collection: every registered source (FOCUS, /metrics, Prometheus) read into ClickHouse. */
import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { InfraActivities } from '../../activities/infra/activities.js';
import { SA } from '../../common/search-attributes.js';
import { agentOptions } from '../options.js';

const acts = proxyActivities<InfraActivities>(agentOptions);
/**
 * Collection of one source: a large FOCUS export or a Prometheus source days behind takes longer
 * than the agents' 5 minutes; it heartbeats after every batch or chunk, so a stuck one is retried
 * within 2 minutes and a retry resumes where the last recorded chunk ended.
 */
const collecting = proxyActivities<InfraActivities>({ ...agentOptions, startToCloseTimeout: '30 minutes', heartbeatTimeout: '2 minutes' });

export async function collectInfra(): Promise<Array<{ id: string; rows: number; bad: number; error?: string }>> {
  upsertSearchAttributes([{ key: SA.kind, value: 'collect-infra' }]);
  const sources = await acts.listInfraSources();
  return Promise.all(sources.map((s) => collecting.collectInfraSource({ id: s.id })));
}
