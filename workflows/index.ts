export { collectionCycle, scoreBatch, cycleStatusQuery } from './collector/collection-cycle.js';
export { computeBaseline, deployGate, abCompare, gateProgressQuery, overrideUpdate, overrideSignal } from './gate/deploy-gate.js';
export { costAgent, performanceAgent, resourceAgent, applicationAgent, optimizationReview, collectInfra } from './agents/agents.js';
