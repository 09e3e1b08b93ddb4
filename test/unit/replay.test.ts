/**
 * Replays the committed histories of every workflow type against the current workflow code:
 * a non-deterministic change to a workflow fails here. Regenerate the histories (after an
 * intended, versioned change) with `npm run histories:record`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowsPath } from '../../workers/worker.js';
import { HISTORY_DIR } from '../helpers/histories.js';

const EXPECTED = [
  'collection-cycle',
  'score-batch',
  'compute-baseline',
  'gate-reject',
  'gate-approve',
  'gate-inconclusive',
  'gate-override',
  'application-agent-explain',
  'ab-compare',
  'cost-agent',
  'performance-agent',
  'resource-agent',
  'application-agent-review',
  'optimization-review',
];

describe('replay of recorded histories', () => {
  const files = readdirSync(HISTORY_DIR).filter((f) => f.endsWith('.json'));

  it('has a history for every workflow type and path', () => {
    expect(files.map((f) => f.replace(/\.json$/, '')).sort()).toEqual([...EXPECTED].sort());
  });

  it('replays every history deterministically with the current workflow code', async () => {
    try {
      Runtime.install({ logger: new DefaultLogger('WARN') });
    } catch {
      /* installed by another test in this process */
    }
    const histories = files.map((f) => {
      const j = JSON.parse(readFileSync(join(HISTORY_DIR, f), 'utf8')) as { workflowId: string; history: unknown };
      return { workflowId: j.workflowId, history: historyFromJSON(j.history) };
    });
    const failures: string[] = [];
    let replayed = 0;
    for await (const r of Worker.runReplayHistories({ workflowsPath, replayName: 'optiinfra-replay' }, histories)) {
      if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
      replayed++;
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(EXPECTED.length);
  }, 120_000);
});
