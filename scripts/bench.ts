/**
 * Benchmarks, printing figures and writing them to bench-results/<time>.json so runs compare.
 * Today: the deploy gate's decision quality on score streams resampled from the offline judge's
 * scores of HaluEval answers, next to the seed's naive rule.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../client/stack.js';
import { formatReport, runGateSimulation } from './gate-sim.js';

const results: Record<string, unknown> = { at: new Date().toISOString(), node: process.version };

console.log('== decision quality of the deploy gate (2,000 runs per scenario) ==');
const t0 = Date.now();
const sim = runGateSimulation({ runs: 2000, seed: 1, lookSize: 10, maxSamples: 600, baselineSize: 1000 });
console.log(formatReport(sim));
console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
results.gateSimulation = sim;

const dir = join(repoRoot(), 'bench-results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(results, null, 2));
console.log(`\nresults written to ${file}`);
