/**
 * Recorded workflow histories for replay tests. Integration tests call `recordHistory` after a
 * workflow completes; it writes `test/histories/<name>.json` only when OPTIINFRA_RECORD_HISTORIES=1
 * (`npm run histories:record`), so normal runs leave the committed files alone.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { repoRoot } from '../../stack/paths.js';

export const HISTORY_DIR = join(repoRoot(), 'test', 'histories');

export async function recordHistory(client: Client, workflowId: string, name: string, runId?: string): Promise<void> {
  if (process.env.OPTIINFRA_RECORD_HISTORIES !== '1') return;
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  mkdirSync(HISTORY_DIR, { recursive: true });
  // The workflow id matters: child workflow ids derive from it, and replay compares them.
  const file = { workflowId, history: JSON.parse(historyToJSON(history)) as unknown };
  writeFileSync(join(HISTORY_DIR, `${name}.json`), `${JSON.stringify(file)}\n`);
}
