export { collectionCycle, scoreBatch, cycleStatusQuery } from './collection.js';
export { computeBaseline, applicationAgent, deployGate, abCompare, gateProgressQuery, overrideUpdate, overrideSignal } from './gate.js';
