export { collectionCycle, scoreBatch, cycleStatusQuery } from './collection.js';
