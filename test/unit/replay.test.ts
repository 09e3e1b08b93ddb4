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
import * as workflows from '../../workflows/index.js';
import { HISTORY_DIR } from '../helpers/histories.js';

/** The committed histories of workflows recorded before a versioned change (they must keep replaying). */
const FROZEN = [
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
  'gate-notifications',
  'collect-infra',
  'collect-infra-paged',
];

interface HistoryFile {
  workflowId: string;
  history: { events?: Array<{ workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }> };
}

describe('replay of recorded histories', () => {
  const files = readdirSync(HISTORY_DIR).filter((f) => f.endsWith('.json'));

  const parsed = files.map((f) => JSON.parse(readFileSync(join(HISTORY_DIR, f), 'utf8')) as HistoryFile);

  it('keeps every frozen history and has one for every workflow type', () => {
    const names = files.map((f) => f.replace(/\.json$/, ''));
    for (const name of FROZEN) expect(names).toContain(name);
    const recorded = new Set(parsed.map((h) => h.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name));
    const types = Object.entries(workflows)
      .filter(([, v]) => typeof v === 'function')
      .map(([k]) => k);
    expect(types.length).toBeGreaterThan(10);
    expect(types.filter((t) => !recorded.has(t))).toEqual([]);
  });

  it('replays every history deterministically with the current workflow code', async () => {
    try {
      Runtime.install({ logger: new DefaultLogger('WARN') });
    } catch {
      /* installed by another test in this process */
    }
    const histories = parsed.map((j) => ({ workflowId: j.workflowId, history: historyFromJSON(j.history) }));
    const failures: string[] = [];
    let replayed = 0;
    for await (const r of Worker.runReplayHistories({ workflowsPath, replayName: 'optiinfra-replay' }, histories)) {
      if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
      replayed++;
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(files.length);
  }, 120_000);
});
