/** Infrastructure collection: every registered source (FOCUS, /metrics, Prometheus) read into ClickHouse. */
import { continueAsNew, patched, proxyActivities, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { InfraActivities } from '../../activities/infra/activities.js';
import { rootCause } from '../../common/failures.js';
import { SA } from '../../common/search-attributes.js';
import { inParallel } from '../../domain/collector/collection.js';
import {
  addOutcome,
  collectionLine,
  emptyCollection,
  type InfraCollection,
  infraCarrySchema,
  type SourceOutcome,
} from '../../domain/infra/collection.js';
import { agentOptions } from '../options.js';

const acts = proxyActivities<InfraActivities>(agentOptions);
/**
 * Collection of one source: a large FOCUS export or a Prometheus source days behind takes longer
 * than the agents' 5 minutes; it heartbeats after every batch or chunk, so a stuck one is retried
 * within 2 minutes and a retry resumes where the last recorded chunk ended.
 */
const collecting = proxyActivities<InfraActivities>({ ...agentOptions, startToCloseTimeout: '30 minutes', heartbeatTimeout: '2 minutes' });

/** Workflows started before it collected every source at once and returned every outcome. */
const PAGED_SOURCES = 'infra-paged-sources';
/** Source ids listed at a time. */
export const SOURCES_PAGE = 200;
/** Sources collected at once. */
export const SOURCES_IN_FLIGHT = 16;
/** Sources one run collects before it continues as new (its history stays near 7,000 events). */
export const SOURCES_PER_RUN = 2_000;

/**
 * Every registered source, in id order, a page at a time with at most SOURCES_IN_FLIGHT
 * collections running. A source whose collection fails (its retries spent) is one failed outcome;
 * the others go on. The result is bounded (see domain/infra/collection.ts), and a long list of
 * sources continues as new, carrying the totals and the listed outcomes. Its only argument is
 * that carry: anything else given by hand is ignored.
 */
export async function collectInfra(carry?: unknown): Promise<InfraCollection | SourceOutcome[]> {
  upsertSearchAttributes([{ key: SA.kind, value: 'collect-infra' }]);
  if (!patched(PAGED_SOURCES)) {
    const sources = await acts.listInfraSources();
    return Promise.all(sources.map((s) => collecting.collectInfraSource({ id: s.id })));
  }
  const resumed = infraCarrySchema.safeParse(carry);
  let done = resumed.success ? resumed.data.done : emptyCollection();
  let after = resumed.success ? resumed.data.after : undefined;
  let thisRun = 0;
  for (;;) {
    const ids = await acts.listInfraSourceIds({ after, limit: SOURCES_PAGE });
    const outcomes = await inParallel(ids, SOURCES_IN_FLIGHT, async (id): Promise<SourceOutcome> => {
      try {
        return await collecting.collectInfraSource({ id });
      } catch (e) {
        const c = rootCause(e);
        return { id, kind: 'unknown', rows: 0, bad: 0, error: c.type ? `${c.type}: ${c.message}` : c.message };
      }
    });
    for (const o of outcomes) done = addOutcome(done, o);
    setCurrentDetails(collectionLine(done));
    if (ids.length < SOURCES_PAGE) return done;
    after = ids[ids.length - 1]!;
    thisRun += ids.length;
    if (thisRun >= SOURCES_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof collectInfra>({ after, done });
    }
  }
}
