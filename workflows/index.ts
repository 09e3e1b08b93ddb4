/** Every workflow type the worker registers, by feature. */
export { collectionCycle, cycleStatusQuery } from './collector/collection-cycle.js';
export { scoreBatch } from './collector/score-batch.js';
export { backfill, backfillStatusQuery } from './collector/backfill.js';
export { computeBaseline } from './gate/baseline.js';
export { deployGate, gateProgressQuery, overrideUpdate, overrideSignal } from './gate/deploy-gate.js';
export { abCompare } from './gate/compare.js';
export { gateNotifications } from './gate/notify.js';
export { costAgent } from './agents/cost/cost-agent.js';
export { performanceAgent } from './agents/performance/performance-agent.js';
export { resourceAgent } from './agents/resource/resource-agent.js';
export { applicationAgent } from './agents/application/application-agent.js';
export { explainDecision } from './agents/application/explain-decision.js';
export { optimizationReview } from './agents/review.js';
export { collectInfra } from './infra/collect-infra.js';
