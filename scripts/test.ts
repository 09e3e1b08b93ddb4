/**
 * Test runner: checks what the suite needs (and installs what it can), type-checks, then runs
 * vitest (unit and integration projects). Extra arguments go to vitest.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureClickhouseServer, ensureTemporalCli, ensureTemporalTestServer, repoRoot, StackError } from '../client/stack.js';
import { resolveDataDir } from '../activities/collector/simulator.js';

const root = repoRoot();
const step = (s: string) => console.log(`[test] ${s}`);

async function preflight(): Promise<void> {
  const shared = join(root, '.stack-test');
  const data = resolveDataDir();
  if (!existsSync(join(data.dir, 'halueval', 'qa_one-turn.jsonl'))) {
    throw new StackError(`test data not found in ${data.dir} (from ${data.from}): set OPTIINFRA_DATA_DIR to the shared data directory`);
  }
  step(`Temporal CLI: ${await ensureTemporalCli(shared)}`);
  step(`Temporal test server: ${await ensureTemporalTestServer(shared)}`);
  step(`ClickHouse server: ${await ensureClickhouseServer()}`);
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

step('vitest run');
const r = spawnSync(join(root, 'node_modules', '.bin', 'vitest'), ['run', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, FORCE_COLOR: process.env.CI ? '0' : process.env.FORCE_COLOR },
});
process.exit(r.status ?? 1);
