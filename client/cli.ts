/**
 * The `optiinfra` command line: local stack, worker, deployments, collection, schedules, scores.
 * Exit codes: 0 success, 3 usage or infrastructure error (the gate adds 1 reject, 2 inconclusive).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ScheduleNotFoundError, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ConfigError, type Config } from '../common/config.js';
import type { CycleResult } from '../common/collection.js';
import { SA } from '../common/search-attributes.js';
import { formatZodError, ID_PATTERN } from '../common/types.js';
import { sourceConfigSchema, type SourceConfig } from '../activities/collector/sources.js';
import { getDeployment, listDeployments, upsertDeployment } from '../activities/postgres/db.js';
import type { ScoreAggregate } from '../activities/clickhouse/store.js';
import { createWorkers } from '../workers/worker.js';
import { createLlm, hasWorkflowPollers, openStores, runtimeConfig, temporalClient, uiLink } from './runtime.js';
import { ensureSchedule, scheduleId } from './schedules.js';
import { stackDown, stackStatus, stackUp, StackError } from './stack.js';

export const EXIT = { ok: 0, usage: 3 } as const;

class UsageError extends Error {}

const idArg = (what: string) => (v: string) => {
  if (!ID_PATTERN.test(v)) {
    throw new InvalidArgumentError(
      `${what} must be 1-128 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit`,
    );
  }
  return v;
};
const intArg = (what: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}`);
  return n;
};
const rateArg = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('sample rate must be a number in (0, 1]');
  return n;
};
const durationArg = (v: string) => {
  if (!/^\d+(s|m|h|d)$/.test(v) || Number.parseInt(v, 10) === 0) {
    throw new InvalidArgumentError("interval must look like 30s, 15m, 2h or 1d");
  }
  return v;
};

export const manualCycleId = (deployment: string, at: Date) => `collect/${deployment}/manual-${at.toISOString()}`;

function printJson(x: unknown) {
  console.log(JSON.stringify(x, null, 2));
}

function table(rows: Array<Record<string, unknown>>): string {
  if (!rows.length) return '(none)';
  const cols = Object.keys(rows[0]!);
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

export function formatScores(deployment: string, rows: ScoreAggregate[]): string {
  return [
    `scores of ${deployment} (mean of the check's score; flagged: quality < 0.5, hallucination or toxicity >= 0.5)`,
    table(
      rows.map((r) => ({
        model_version: r.model_version,
        check: r.check_name,
        judge: r.judge,
        scored: r.ok,
        failed: r.failed,
        mean: r.mean,
        p50: r.p50,
        p90: r.p90,
        flagged: r.flagged,
      })),
    ),
  ].join('\n');
}

export function describeCycle(r: CycleResult): string {
  return [
    `cycle ${r.cycleId}: ${r.stored} interactions stored (${r.fetched} fetched, ${r.bad} bad records), ${r.sampled} sampled`,
    `checks: ${r.scored} scored, ${r.failed} failed, ${r.skipped} already scored; judge ${r.judge}; LLM tokens ${r.promptTokens}+${r.completionTokens}`,
    ...r.badSamples.slice(0, 5).map((b) => `  bad record at ${b.position}: ${b.reason}`),
    ...r.failureSamples.slice(0, 5).map((f) => `  failed ${f.check} of ${f.id}: ${f.reason}`),
  ].join('\n');
}

async function withClient<T>(fn: (c: Awaited<ReturnType<typeof temporalClient>>, config: Config) => Promise<T>): Promise<T> {
  const config = runtimeConfig();
  const client = await temporalClient(config);
  try {
    return await fn(client, config);
  } finally {
    await client.connection.close();
  }
}

export async function runCycle(
  deployment: string,
  opts: { pageSize?: number; batchSize?: number; workflowId?: string } = {},
): Promise<CycleResult> {
  return withClient(async (client, config) => {
    const stores = await openStores(config);
    try {
      if (!(await getDeployment(stores.db, deployment))) {
        throw new UsageError(
          `deployment '${deployment}' is not registered: add it with 'optiinfra deployment add ${deployment} --source-url URL' (or --source-path PATH)`,
        );
      }
    } finally {
      await stores.close();
    }
    if (!(await hasWorkflowPollers(client, config.temporal.namespace, config.temporal.taskQueue))) {
      console.error(
        `warning: no worker is polling task queue '${config.temporal.taskQueue}': the cycle waits until one runs ('optiinfra worker')`,
      );
    }
    const workflowId = opts.workflowId ?? manualCycleId(deployment, new Date());
    const input = { deployment, pageSize: opts.pageSize, batchSize: opts.batchSize };
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
    return (await handle.result()) as CycleResult;
  });
}

export function buildProgram(): Command {
  const program = new Command()
    .name('optiinfra')
    .description('Watches self-hosted LLM deployments: scores every interaction, keeps quality baselines, gates rollouts.')
    .showHelpAfterError()
    .exitOverride();

  const stack = program.command('stack').description('the local stack: Temporal dev server, ClickHouse, PostgreSQL (PGlite)');
  stack
    .command('up')
    .description('install what is missing and start what is not running (idempotent)')
    .action(async () => {
      const ep = await stackUp();
      const stores = await openStores(runtimeConfig());
      await stores.close();
      console.log(`stack is up; Temporal UI: ${ep.temporalUiUrl}`);
    });
  stack
    .command('status')
    .description('show what runs')
    .action(async () => {
      console.log(table(await stackStatus()));
    });
  stack
    .command('down')
    .description('stop what `stack up` started (data is kept)')
    .action(async () => {
      await stackDown();
    });

  program
    .command('worker')
    .description('run the worker (workflows, store activities, and the rate-limited LLM queue) until SIGINT/SIGTERM')
    .action(async () => {
      const config = runtimeConfig();
      const stores = await openStores(config);
      const connection = await NativeConnection.connect({ address: config.temporal.address });
      const set = await createWorkers(config, connection, { config, ch: stores.ch, db: stores.db, llm: createLlm(config) });
      const stop = () => set.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      console.log(
        `worker on ${config.temporal.address} (${config.temporal.namespace}), queues ${config.temporal.taskQueue} and ${config.temporal.llmTaskQueue}` +
          ` (LLM ${config.llm.enabled ? `groq ${config.groq.model}` : 'off: offline judge'}, ≤ ${config.llm.requestsPerSecond}/s)`,
      );
      await set.run();
      await connection.close();
      await stores.close();
    });

  const deployment = program.command('deployment').description('deployments whose interactions are collected');
  deployment
    .command('add')
    .description('register (or update) a deployment and where its interactions come from')
    .argument('<id>', 'deployment id', idArg('deployment id'))
    .option('--source-url <url>', 'HTTP JSON endpoint with cursor pagination (see docs/record-format.md)')
    .option('--source-path <path>', 'a JSONL file or a directory of *.jsonl request logs')
    .option('--sample-rate <rate>', 'share of interactions to score, deterministic by id', rateArg, 1)
    .action(async (id: string, o: { sourceUrl?: string; sourcePath?: string; sampleRate: number }) => {
      if (!!o.sourceUrl === !!o.sourcePath) throw new UsageError('give exactly one of --source-url or --source-path');
      const candidate: unknown = o.sourceUrl ? { type: 'http', url: o.sourceUrl } : { type: 'jsonl', path: o.sourcePath };
      const parsed = sourceConfigSchema.safeParse(candidate);
      if (!parsed.success) throw new UsageError(`invalid source: ${formatZodError(parsed.error)}`);
      const source: SourceConfig = parsed.data;
      const stores = await openStores(runtimeConfig());
      try {
        await upsertDeployment(stores.db, { id, source, sample_rate: o.sampleRate });
      } finally {
        await stores.close();
      }
      console.log(`deployment ${id} registered (${source.type} source, sample rate ${o.sampleRate})`);
    });
  deployment
    .command('list')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const stores = await openStores(runtimeConfig());
      try {
        const rows = await listDeployments(stores.db);
        if (o.json) printJson(rows);
        else console.log(table(rows.map((r) => ({ id: r.id, source: JSON.stringify(r.source), sample_rate: r.sample_rate, cursor: r.cursor }))));
      } finally {
        await stores.close();
      }
    });

  program
    .command('collect')
    .description('collect and score new interactions of a deployment')
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .option('--once', 'run one cycle now and wait for its result (default: make sure the schedule exists and trigger it)')
    .option('--page-size <n>', 'interactions per fetch', intArg('page size', 1, 2000))
    .option('--batch-size <n>', 'interactions per scoreBatch child workflow', intArg('batch size', 1, 200))
    .option('--json', 'machine-readable output')
    .action(async (o: { deployment: string; once?: boolean; pageSize?: number; batchSize?: number; json?: boolean }) => {
      if (!o.once) {
        await withClient(async (c, config) => {
          const h = c.schedule.getHandle(scheduleId(o.deployment));
          try {
            await h.trigger();
          } catch (e) {
            if (!(e instanceof ScheduleNotFoundError)) throw e;
            await ensureSchedule(c, config, { deployment: o.deployment, every: '15m' });
            await h.trigger();
          }
        });
        console.log(`triggered schedule ${scheduleId(o.deployment)}`);
        return;
      }
      const r = await runCycle(o.deployment, { pageSize: o.pageSize, batchSize: o.batchSize });
      if (o.json) printJson(r);
      else console.log(describeCycle(r));
    });

  const schedule = program.command('schedule').description('Temporal Schedules: one collection cycle per deployment every interval');
  schedule
    .command('create')
    .description('create or update the schedule of a deployment (idempotent)')
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .option('--every <interval>', 'interval, e.g. 15m', durationArg, '15m')
    .option('--paused', 'create it paused')
    .action(async (o: { deployment: string; every: string; paused?: boolean }) => {
      const created = await withClient((c, config) => ensureSchedule(c, config, o));
      console.log(`schedule ${scheduleId(o.deployment)} ${created ? 'created' : 'updated'}: every ${o.every}`);
    });
  schedule
    .command('list')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) =>
      withClient(async (client) => {
        const rows: Array<Record<string, unknown>> = [];
        for await (const s of client.schedule.list()) {
          if (!s.scheduleId.startsWith('collect/')) continue;
          rows.push({
            schedule: s.scheduleId,
            paused: s.state.paused,
            next: s.info.nextActionTimes[0]?.toISOString(),
            last: s.info.recentActions.at(-1)?.takenAt.toISOString(),
          });
        }
        if (o.json) printJson(rows);
        else console.log(table(rows));
      }),
    );
  for (const [name, what] of [
    ['describe', 'show a schedule'],
    ['pause', 'pause a schedule'],
    ['unpause', 'resume a schedule'],
    ['trigger', 'start a cycle now'],
    ['delete', 'delete a schedule'],
  ] as const) {
    schedule
      .command(name)
      .description(what)
      .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
      .action(async (o: { deployment: string }) =>
        withClient(async (client) => {
          const h = client.schedule.getHandle(scheduleId(o.deployment));
          try {
            if (name === 'describe') {
              const d = await h.describe();
              printJson({
                schedule: d.scheduleId,
                paused: d.state.paused,
                note: d.state.note,
                spec: d.spec,
                overlap: d.policies.overlap,
                catchupWindowMs: d.policies.catchupWindow,
                nextActionTimes: d.info.nextActionTimes.slice(0, 3),
                recentActions: d.info.recentActions.slice(-5).map((a) => ({
                  scheduledAt: a.scheduledAt,
                  takenAt: a.takenAt,
                  workflowId: a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : undefined,
                })),
                runningActions: d.info.runningActions.map((a) => a.workflow.workflowId),
              });
            } else if (name === 'pause') await h.pause('paused from the optiinfra CLI');
            else if (name === 'unpause') await h.unpause('resumed from the optiinfra CLI');
            else if (name === 'trigger') await h.trigger();
            else await h.delete();
          } catch (e) {
            if (e instanceof ScheduleNotFoundError) {
              throw new UsageError(`no schedule for deployment '${o.deployment}': create it with 'optiinfra schedule create --deployment ${o.deployment}'`);
            }
            throw e;
          }
          if (name !== 'describe') console.log(`schedule ${scheduleId(o.deployment)}: ${name} done`);
        }),
      );
  }

  program
    .command('scores')
    .description('aggregates of stored scores per model version and check')
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .option('--version <v>', 'only this model version', idArg('model version'))
    .option('--json', 'machine-readable output')
    .action(async (o: { deployment: string; version?: string; json?: boolean }) => {
      const stores = await openStores(runtimeConfig());
      try {
        const rows = await stores.ch.aggregateScores(o.deployment, o.version);
        if (o.json) printJson(rows);
        else console.log(formatScores(o.deployment, rows));
      } finally {
        await stores.close();
      }
    });

  program.addOption(new Option('--verbose', 'print stack traces on errors').hideHelp());
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
    if (err.code?.startsWith('commander.')) return EXIT.usage; // commander printed the message
    if (e instanceof WorkflowFailedError) {
      let c: unknown = e.cause;
      while (c && typeof c === 'object' && 'cause' in c && (c as { cause?: unknown }).cause) c = (c as { cause: unknown }).cause;
      console.error(`error: workflow failed: ${c instanceof Error ? c.message : e.message}`);
      return EXIT.usage;
    }
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof StackError) {
      console.error(`error: ${e.message}`);
      return EXIT.usage;
    }
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    if (process.argv.includes('--verbose') && e instanceof Error) console.error(e.stack);
    return EXIT.usage;
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().then((code) => process.exit(code));
}
