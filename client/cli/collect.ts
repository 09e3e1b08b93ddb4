/**
 * `optiinfra collect` (one collection cycle of a deployment, now or through its schedule) and
 * `optiinfra scores` (aggregates of the stored scores).
 */
import type { Command } from 'commander';
import { ScheduleNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { rootCause } from '../../common/failures.js';
import { lastCycle, listCycles } from '../../activities/storage/postgres/collection-runs.js';
import { SA } from '../../common/search-attributes.js';
import type { CycleResult, CycleTotals } from '../../domain/collector/collection.js';
import { uiLink, warnIfNoWorker } from '../runtime.js';
import { ensureSchedule, scheduleId, triggerSchedule } from '../schedules.js';
import { triggerSkippedLine } from './schedules.js';
import { idArg, intArg, UsageError } from './args.js';
import { withClient, withStores } from './connect.js';
import { requireDeployment } from './deployments.js';
import { describeCycle, formatCycles, formatScores, printJson } from './format.js';
import { latenessNote } from '../../domain/collector/collection.js';

export const manualCycleId = (deployment: string, at: Date) => `collect/${deployment}/manual-${at.toISOString()}`;

/** Start one collection cycle of a registered deployment and wait for its result. */
export async function runCycle(
  deployment: string,
  opts: { pageSize?: number; batchSize?: number; maxConcurrentBatches?: number; workflowId?: string } = {},
): Promise<CycleResult> {
  return withClient(async (client, config) => {
    await withStores((stores) => requireDeployment(stores.db, deployment), config);
    await warnIfNoWorker(client, config, 'the cycle');
    const workflowId = opts.workflowId ?? manualCycleId(deployment, new Date());
    const input = { deployment, pageSize: opts.pageSize, batchSize: opts.batchSize, maxConcurrentBatches: opts.maxConcurrentBatches };
    const handle = await client.workflow.start('collectionCycle', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [input],
      typedSearchAttributes: [
        { key: SA.deployment, value: deployment },
        { key: SA.kind, value: 'collect' },
      ],
      staticSummary: `Collection cycle for ${deployment} (manual)`,
    });
    const link = uiLink(config, workflowId, handle.firstExecutionRunId);
    console.error(`started ${workflowId}${link ? `\n  ${link}` : ''}`);
    const result = handle.result() as Promise<CycleResult>;
    let done = false;
    void result.finally(() => (done = true)).catch(() => undefined);
    // Progress while it runs: the cycle's status query, and the retries of an activity that keeps failing.
    let last = '';
    while (!done) {
      await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, PROGRESS_MS))]);
      if (done) break;
      const line = await progressLine(handle).catch(() => '');
      if (line && line !== last) console.error(line);
      last = line || last;
    }
    try {
      return await result;
    } catch (e) {
      throw new UsageError(`cycle ${workflowId} failed: ${rootCause(e).message}${link ? ` (see ${link})` : ''}`);
    }
  });
}

const PROGRESS_MS = 2000;

async function progressLine(handle: WorkflowHandle): Promise<string> {
  const s = await handle.query<CycleTotals & { phase: string }>('status');
  const d = await handle.describe();
  const retrying = (d.raw.pendingActivities ?? []).find((a) => (a.attempt ?? 0) > 1 && a.lastFailure?.message);
  const retry = retrying ? `; ${retrying.activityType?.name} attempt ${retrying.attempt}: ${retrying.lastFailure?.message}` : '';
  return `${s.phase}: ${s.stored} stored, ${s.scored} checks scored, ${s.failed} failed, ${s.bad} bad${retry}`;
}

export function registerCollectCommand(program: Command): void {
  program
    .command('collect')
    .description('collect and score new interactions of a deployment')
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .option('--once', 'run one cycle now and wait for its result (default: make sure the schedule exists and trigger it)')
    .option('--page-size <n>', 'interactions per fetch', intArg('page size', 1, 1000))
    .option('--batch-size <n>', 'interactions per scoring activity', intArg('batch size', 1, 1000))
    .option('--max-concurrent-batches <n>', 'scoring batches in flight at once, over all workers', intArg('max concurrent batches', 1, 50))
    .option('--json', 'machine-readable output')
    .action(
      async (o: {
        deployment: string;
        once?: boolean;
        pageSize?: number;
        batchSize?: number;
        maxConcurrentBatches?: number;
        json?: boolean;
      }) => {
        if (!o.once) {
          const ignored = (['pageSize', 'batchSize', 'maxConcurrentBatches'] as const).filter((k) => o[k] !== undefined);
          if (ignored.length) {
            throw new UsageError(
              `--page-size, --batch-size and --max-concurrent-batches apply to 'collect --once' only (the schedule's cycles take 'schedule create --max-concurrent-batches')`,
            );
          }
          await withStores((stores) => requireDeployment(stores.db, o.deployment));
          const id = scheduleId(o.deployment);
          const t = await withClient(async (c, config) => {
            try {
              return await triggerSchedule(c, id);
            } catch (e) {
              if (!(e instanceof ScheduleNotFoundError)) throw e;
              await ensureSchedule(c, config, { deployment: o.deployment, every: '15m' });
              return triggerSchedule(c, id);
            }
          });
          console.log(t.started ? `triggered schedule ${id}` : triggerSkippedLine(id, t.running));
          return;
        }
        const r = await runCycle(o.deployment, {
          pageSize: o.pageSize,
          batchSize: o.batchSize,
          maxConcurrentBatches: o.maxConcurrentBatches,
        });
        if (o.json) printJson(r);
        else console.log(describeCycle(r));
      },
    );
}

/** Model versions `scores` lists by default: the most recently scored. */
export const DEFAULT_SCORE_VERSIONS = 20;

export function registerScoresCommand(program: Command): void {
  program
    .command('scores')
    .description('aggregates of stored scores per model version and check (the most recently scored versions)')
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .option('--version <v>', 'only this model version', idArg('model version'))
    .option('--limit <n>', 'how many model versions, the most recently scored', intArg('limit', 1, 1000), DEFAULT_SCORE_VERSIONS)
    .option('--json', 'machine-readable output')
    .action(async (o: { deployment: string; version?: string; limit: number; json?: boolean }) =>
      withStores(async (stores) => {
        // Versions are chosen by ClickHouse from its per-day aggregates: the rows read and the
        // lines printed stay bounded however many versions the deployment had.
        const picked = o.version ? undefined : await stores.ch.latestScoredVersions(o.deployment, o.limit);
        const versions = o.version ?? picked!.versions;
        const rows = await stores.ch.aggregateScores(o.deployment, versions);
        const interactions = await stores.ch.interactionsPerVersion(o.deployment, versions);
        const last = await lastCycle(stores.db, o.deployment);
        const shown = picked && { shown: picked.versions.length, total: picked.total };
        if (o.json) printJson({ scores: rows, interactions, lastCycle: last, ...(shown ? { versions: shown } : {}) });
        else console.log(formatScores(o.deployment, rows, interactions, lastCycleLine(last), shown));
      }),
    );
}

/** The latest cycle that ran, for `scores`: its coverage note and, when it began late, how late. */
function lastCycleLine(last: Awaited<ReturnType<typeof lastCycle>>): string {
  if (!last) return '';
  const late = latenessNote(last.scheduled_at, last.started_at);
  return [last.status === 'failed' ? `failed (${last.error ?? ''})` : '', last.coverage_note, late].filter(Boolean).join('; ');
}

export function registerCyclesCommand(program: Command): void {
  program
    .command('cycles')
    .description("a deployment's recorded collection cycles, newest first: status (ok, failed, skipped), due, started, how late")
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .option('--limit <n>', 'how many cycles', intArg('limit', 1, 1000), 20)
    .option('--json', 'machine-readable output')
    .action(async (o: { deployment: string; limit: number; json?: boolean }) =>
      withStores(async (stores) => {
        await requireDeployment(stores.db, o.deployment);
        const rows = await listCycles(stores.db, o.deployment, o.limit);
        if (o.json) printJson(rows.map((r) => ({ ...r, lateness: latenessNote(r.scheduled_at, r.started_at) || undefined })));
        else console.log(formatCycles(o.deployment, rows));
      }),
    );
}
