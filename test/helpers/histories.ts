/**
 * Recorded workflow histories for replay tests. Integration tests call `recordHistory` after a
 * workflow completes; it writes only when OPTIINFRA_RECORD_HISTORIES=1 (`npm run
 * histories:record`), and never over a committed history: those are frozen, so every workflow
 * version ever recorded keeps replaying. A new recording goes to `<name>.json` when there is none,
 * else to `<name>.g<GENERATION>.json` (raise GENERATION when workflow commands change on purpose).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { repoRoot } from '../../stack/paths.js';

export const HISTORY_DIR = join(repoRoot(), 'test', 'histories');

/** Generation of the histories a recording run writes (see the module comment). */
export const GENERATION = 3;

export async function recordHistory(client: Client, workflowId: string, name: string, runId?: string): Promise<void> {
  if (process.env.OPTIINFRA_RECORD_HISTORIES !== '1') return;
  const target = [`${name}.json`, `${name}.g${GENERATION}.json`].find((f) => !existsSync(join(HISTORY_DIR, f)));
  if (!target) return;
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  mkdirSync(HISTORY_DIR, { recursive: true });
  // The workflow id matters: child workflow ids derive from it, and replay compares them.
  const file = { workflowId, history: JSON.parse(historyToJSON(history)) as unknown };
  writeFileSync(join(HISTORY_DIR, target), `${JSON.stringify(file)}\n`);
}
