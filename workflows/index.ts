export { collectionCycle, scoreBatch, cycleStatusQuery } from './collection.js';
export { computeBaseline, deployGate, abCompare, gateProgressQuery, overrideUpdate, overrideSignal } from './gate.js';
export { costAgent, performanceAgent, resourceAgent, applicationAgent, optimizationReview, collectInfra } from './agents.js';
