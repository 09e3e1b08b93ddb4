/** The activities of the four analysis agents and of infrastructure collection, as one object for the worker. */
import type { ActivityDeps } from '../deps.js';
import { createInfraActivities } from '../infra/activities.js';
import { createApplicationActivities } from './application/activities.js';
import { createCostActivities } from './cost/activities.js';
import { createNarrativeActivities } from './narrative.js';
import { createPerformanceActivities } from './performance/activities.js';
import { createResourceActivities } from './resource/activities.js';

export function createAgentActivities(deps: ActivityDeps) {
  const infra = createInfraActivities(deps);
  return {
    listInfraSources: infra.listInfraSources,
    listInfraSourceIds: infra.listInfraSourceIds,
    collectInfraSource: infra.collectInfraSource,
    ...createCostActivities(deps, infra),
    ...createPerformanceActivities(deps, infra),
    ...createResourceActivities(deps, infra),
    ...createApplicationActivities(deps),
    ...createNarrativeActivities(deps),
  };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>;
