/**
 * Test runner: checks what the suite needs (and installs what it can), type-checks, then runs
 * biome check (lint and format), vitest (unit and integration projects). Extra arguments go to vitest.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureClickhouseServer, ensureTemporalCli, ensureTemporalTestServer } from '../stack/binaries.js';
import { StackError } from '../stack/errors.js';
import { repoRoot } from '../stack/paths.js';
import { resolveDataDir } from '../stack/sim/collector-simulator.js';
import { ensurePrometheus } from '../stack/binaries.js';

const root = repoRoot();
const step = (s: string) => console.log(`[test] ${s}`);

async function preflight(): Promise<void> {
  const shared = join(root, '.stack-test');
  const data = resolveDataDir();
  if (!existsSync(join(data.dir, 'halueval', 'qa_one-turn.jsonl'))) {
    throw new StackError(
      `test data not found in ${data.dir} (from ${data.from}): the repository ships it in data/ (or set OPTIINFRA_DATA_DIR to a directory holding halueval/qa_one-turn.jsonl)`,
    );
  }
  step(`Temporal CLI: ${await ensureTemporalCli(shared)}`);
  step(`Temporal test server: ${await ensureTemporalTestServer(shared)}`);
  step(`ClickHouse server: ${await ensureClickhouseServer()}`);
  step(`Prometheus: ${await ensurePrometheus()}`);
}

try {
  await preflight();
} catch (e) {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(3);
}

step('type check (tsc -p .)');
const tsc = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

step('lint and format (biome check: the workflow import rule, the layers, the format)');
const biome = spawnSync(join(root, 'node_modules', '.bin', 'biome'), ['check', '.'], { cwd: root, stdio: 'inherit' });
if (biome.status !== 0) {
  console.error('biome check failed: `npx biome check --write .` fixes the format and the safe lint findings');
  process.exit(biome.status ?? 1);
}

step('vitest run');
const resultsFile = join(root, '.stack-test', 'results.json');
rmSync(resultsFile, { force: true });
const r = spawnSync(
  join(root, 'node_modules', '.bin', 'vitest'),
  ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsFile}`, ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit', env: process.env.CI ? { ...process.env, NO_COLOR: '1' } : process.env },
);
// One plain closing line with the counts.
try {
  const j = JSON.parse(readFileSync(resultsFile, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number };
  console.log(`tests: ${j.numPassedTests} passed, ${j.numFailedTests} failed, ${j.numPendingTests} skipped`);
} catch {
  console.log('tests: no results were written (see the output above)');
}
process.exit(r.status ?? 1);
