/**
 * `optiinfra backfill`: score the stored interactions of a time window that the current judge and
 * prompt versions have not scored (after switching judge or prompt version, or cycles the LLM's
 * budget left partly unscored), as a `backfill` workflow beside the deployment's cycles.
 */
import type { Command } from 'commander';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { rootCause } from '../../common/failures.js';
import { SA } from '../../common/search-attributes.js';
import { durationMs } from '../../common/types.js';
import {
  BACKFILL_DEFAULT_LIMIT,
  BACKFILL_MAX_LIMIT,
  backfillProgressLine,
  coverageText,
  type BackfillInput,
  type BackfillResult,
  type BackfillStatus,
} from '../../domain/collector/backfill.js';
import { uiLink, warnIfNoWorker } from '../runtime.js';
import { durationArg, idArg, intArg, isoArg, UsageError } from './args.js';
import { withClient, withStores } from './connect.js';
import { requireDeployment } from './deployments.js';
import { printJson } from './format.js';

/** The window a backfill covers by default: the last week, as `report` shows it. */
export const DEFAULT_BACKFILL_SINCE = '7d';

export const backfillWorkflowId = (deployment: string, at: Date) => `backfill/${deployment}/${at.toISOString()}`;

export interface BackfillWindowOptions {
  since?: string;
  from?: string;
  to?: string;
}

/**
 * The window [from, to) of the options, as ISO instants: `--since` (default 7d) back from now, or
 * `--from` to `--to` (default now). Refuses both ways at once, an empty or reversed window and a
 * window that starts in the future.
 */
export function backfillWindow(o: BackfillWindowOptions, now: Date): { from: string; to: string } {
  if (o.since !== undefined && (o.from !== undefined || o.to !== undefined)) {
    throw new UsageError('give either --since or --from/--to, not both');
  }
  if (o.to !== undefined && o.from === undefined) throw new UsageError('--to needs --from (or use --since for a window ending now)');
  const nowMs = now.getTime();
  const fromMs = o.from !== undefined ? Date.parse(o.from) : nowMs - durationMs(o.since ?? DEFAULT_BACKFILL_SINCE);
  const toMs = o.to !== undefined ? Date.parse(o.to) : nowMs;
  const from = new Date(fromMs).toISOString();
  const to = new Date(toMs).toISOString();
  if (fromMs >= nowMs) {
    throw new UsageError(`the window starts in the future (--from ${from}, now ${now.toISOString()}): no interaction is stored there yet`);
  }
  if (fromMs >= toMs) throw new UsageError(`the window is empty: --from (${from}) must be before --to (${to})`);
  return { from, to };
}

/** The running backfill of a deployment, if any (Temporal's visibility; undefined when it cannot tell). */
async function runningBackfill(client: Client, deployment: string): Promise<string | undefined> {
  try {
    const query = `${SA.deployment.name} = '${deployment}' AND ${SA.kind.name} = 'backfill' AND ExecutionStatus = 'Running'`;
    for await (const w of client.workflow.list({ query, pageSize: 1 })) return w.workflowId;
  } catch {
    /* visibility unavailable: the backfill still judges nothing twice once its checks are stored */
  }
  return undefined;
}

/** The result in lines, for people. */
export function describeBackfill(r: BackfillResult, workflowId: string): string {
  return [
    `backfill ${workflowId}: ${r.deployment}${r.modelVersion ? ` version ${r.modelVersion}` : ''}, ${r.from} → ${r.to}, judge ${r.judge}`,
    `  ${backfillProgressLine(r)}`,
    r.notSampled ? `  ${r.notSampled} interactions left out by the deployment's sample rate` : '',
    r.inCycle ? `  ${r.inCycle} interactions left to the collection cycle that was scoring them` : '',
    r.failureSamples.length
      ? `  failed checks, e.g. ${r.failureSamples[0]!.id} ${r.failureSamples[0]!.check}: ${r.failureSamples[0]!.reason}`
      : '',
    `  coverage of the window: ${coverageText(r.coverage)} scored by ${r.judge}`,
    r.note ? `  ${r.note}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

const PROGRESS_MS = 2000;

async function waitWithProgress(handle: WorkflowHandle, json: boolean): Promise<BackfillResult> {
  const result = handle.result() as Promise<BackfillResult>;
  let done = false;
  void result.finally(() => (done = true)).catch(() => undefined);
  let last = '';
  while (!done) {
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, PROGRESS_MS))]);
    if (done || json) continue;
    const s = await handle.query<BackfillStatus>('status').catch(() => undefined);
    const line = s ? `${s.phase}: ${backfillProgressLine(s)}` : '';
    if (line && line !== last) console.error(line);
    last = line || last;
  }
  return result;
}

export function registerBackfillCommand(program: Command): void {
  program
    .command('backfill')
    .description("score a window's stored interactions that the current judge and prompt versions have not scored")
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .option('--version <v>', 'only this model version', idArg('model version'))
    .option(
      '--since <duration>',
      `interactions of the last 30m, 12h, 7d ... (default ${DEFAULT_BACKFILL_SINCE})`,
      durationArg('1m', '3650d'),
    )
    .option('--from <iso>', 'interactions from this time', isoArg)
    .option('--to <iso>', 'interactions before this time (default now)', isoArg)
    .option(
      '--limit <n>',
      'most interactions sent to the judge (those missing a check); start again for more',
      intArg('limit', 1, BACKFILL_MAX_LIMIT),
      BACKFILL_DEFAULT_LIMIT,
    )
    .option('--batch-size <n>', 'interactions per scoring activity', intArg('batch size', 1, 1000))
    .option('--max-concurrent-batches <n>', 'scoring batches in flight at once, over all workers', intArg('max concurrent batches', 1, 50))
    .option('--wait', 'wait for the result and print it')
    .option('--json', 'machine-readable output')
    .action(
      async (o: {
        deployment: string;
        version?: string;
        since?: string;
        from?: string;
        to?: string;
        limit: number;
        batchSize?: number;
        maxConcurrentBatches?: number;
        wait?: boolean;
        json?: boolean;
      }) => {
        const now = new Date();
        const window = backfillWindow(o, now);
        await withStores((stores) => requireDeployment(stores.db, o.deployment));
        await withClient(async (client, config) => {
          const running = await runningBackfill(client, o.deployment);
          if (running) {
            throw new UsageError(
              `backfill '${running}' of deployment '${o.deployment}' is running: wait for it (or cancel it) before starting another, so no interaction is judged twice`,
            );
          }
          await warnIfNoWorker(client, config, 'the backfill');
          const workflowId = backfillWorkflowId(o.deployment, now);
          const input: BackfillInput = {
            deployment: o.deployment,
            ...(o.version ? { modelVersion: o.version } : {}),
            ...window,
            limit: o.limit,
            ...(o.batchSize ? { batchSize: o.batchSize } : {}),
            ...(o.maxConcurrentBatches ? { maxConcurrentBatches: o.maxConcurrentBatches } : {}),
          };
          const handle = await client.workflow.start('backfill', {
            taskQueue: config.temporal.taskQueue,
            workflowId,
            args: [input],
            typedSearchAttributes: [
              { key: SA.deployment, value: o.deployment },
              { key: SA.kind, value: 'backfill' },
            ],
            staticSummary: `Backfill of ${o.deployment}${o.version ? ` version ${o.version}` : ''}: ${window.from} → ${window.to}, up to ${o.limit} interactions`,
          });
          const link = uiLink(config, workflowId, handle.firstExecutionRunId);
          if (!o.wait) {
            if (o.json) printJson({ workflowId, runId: handle.firstExecutionRunId, ...window, ...(link ? { link } : {}) });
            else {
              console.log(
                [
                  `started ${workflowId}`,
                  link ? `  ${link}` : '',
                  `  progress: temporal workflow query --workflow-id '${workflowId}' --type status`,
                  `  result:   temporal workflow result --workflow-id '${workflowId}'`,
                ]
                  .filter(Boolean)
                  .join('\n'),
              );
            }
            return;
          }
          console.error(`started ${workflowId}${link ? `\n  ${link}` : ''}`);
          let r: BackfillResult;
          try {
            r = await waitWithProgress(handle, !!o.json);
          } catch (e) {
            throw new UsageError(
              `backfill ${workflowId} failed: ${rootCause(e instanceof WorkflowFailedError ? e.cause : e).message}${link ? ` (see ${link})` : ''}`,
            );
          }
          if (o.json) printJson({ workflowId, ...r });
          else console.log(describeBackfill(r, workflowId));
        });
      },
    );
}
