/**
 * The `optiinfra` command line: local stack, worker, deployments, collection, schedules, scores.
 * Exit codes: 0 success, 3 usage or infrastructure error (the gate adds 1 reject, 2 inconclusive).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ScheduleNotFoundError, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ConfigError, type Config } from '../../common/config.js';
import type { CycleResult } from '../../domain/collector/collection.js';
import { SA } from '../../common/search-attributes.js';
import { formatZodError, ID_PATTERN } from '../../common/types.js';
import { sourceConfigSchema, type SourceConfig } from '../../activities/collector/sources.js';
import { getDeployment, listDeployments, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import type { ScoreAggregate } from '../../activities/storage/clickhouse/store.js';
import { createWorkers } from '../../workers/worker.js';
import { createLlm, hasWorkflowPollers, openStores, runtimeConfig, temporalClient, uiLink } from '../runtime.js';
import { writeFileSync } from 'node:fs';
import { msToNumber, type StringValue } from '@temporalio/common';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { BaselineRecord } from '../../domain/gate/baseline.js';
import type { GateInput, GateProgress, GateResult, Override } from '../../domain/gate/types.js';
import { baselineInputSchema, compareInputSchema, type ComparisonResult } from '../../domain/gate/inputs.js';
import { renderComparisonReport } from '../../domain/gate/report.js';
import {
  GATE_EXIT,
  GateUsageError,
  ciRunFromEnv,
  describeProgress,
  gateExitCode,
  gateWorkflowId,
  overrideGate,
  startOrAttachGate,
  summarizeGate,
  waitForGate,
  writeReports,
} from '../gate.js';
import { ensureInfraSchedule, ensureReviewSchedule, ensureSchedule, INFRA_SCHEDULE_ID, REVIEW_SCHEDULE_ID, scheduleId } from '../schedules.js';
import { infraSourceSchema } from '../../activities/infra/activities.js';
import { latestRecommendations, upsertInfraSource } from '../../activities/storage/postgres/agents.js';
import { AGENTS, type AgentName } from '../../domain/agents/types.js';
import type { AgentRunResult, ReviewResult } from '../../workflows/agents/agents.js';
import { StackError } from '../../stack/errors.js';
import { stackDown, stackStatus, stackUp } from '../../stack/stack.js';
import { codecFor } from '../../workers/codec.js';
import { startCodecServer } from '../codec-server.js';

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

  program
    .command('codec-server')
    .description('decrypt payloads for the Temporal Web UI (start the UI with --ui-codec-endpoint http://127.0.0.1:8888) until SIGINT/SIGTERM')
    .option('--port <port>', 'port to listen on', intArg('port', 1, 65535), 8888)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (o: { port: number; host: string }) => {
      const config = runtimeConfig();
      const codec = codecFor(config);
      if (!codec) throw new UsageError('payload encryption is off: set OPTIINFRA_ENCRYPTION_KEYS (keyId:base64key[,...]) first');
      const loopback = ['127.0.0.1', 'localhost', '::1'].includes(o.host);
      if (!config.codec.token && !loopback) {
        throw new UsageError(`set OPTIINFRA_CODEC_TOKEN before listening on ${o.host}: without it anyone who reaches the port can decrypt`);
      }
      const server = await startCodecServer({ port: o.port, host: o.host, codec, token: config.codec.token, corsOrigin: config.codec.corsOrigin });
      console.log(
        `codec server on ${server.url} (POST /encode, /decode; encrypting with key '${codec.keyId}'; CORS for ${config.codec.corsOrigin}; ` +
          `${config.codec.token ? 'bearer token required' : 'no token: OPTIINFRA_CODEC_TOKEN is unset'})`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
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
          if (!s.scheduleId.startsWith('collect/') && ![REVIEW_SCHEDULE_ID, INFRA_SCHEDULE_ID].includes(s.scheduleId)) continue;
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

  addGateCommands(program);
  addAgentCommands(program);
  program.addOption(new Option('--verbose', 'print stack traces on errors').hideHelp());
  return program;
}

/** Exit code set by commands whose outcome is not plain success (the gate). */
let commandExitCode: number = EXIT.ok;

const pointsArg = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${what} must be a number of points, e.g. 5`);
  if (n < 0) throw new InvalidArgumentError(`${what} must not be negative`);
  if (n > 100) throw new InvalidArgumentError(`${what} must be at most 100 points`);
  return n / 100;
};
const isoArg = (v: string) => {
  if (Number.isNaN(Date.parse(v))) throw new InvalidArgumentError('must be an ISO-8601 date, e.g. 2026-11-25T10:00:00Z');
  return new Date(v).toISOString();
};

interface GateTarget {
  deployment: string;
  candidate: string;
  ciRun?: string;
}
const gateTarget = (c: Command) =>
  c
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .requiredOption('--candidate <version>', 'candidate model version', idArg('candidate version'))
    .option('--ci-run <id>', 'CI run id in the gate id (default: $GITHUB_RUN_ID, $CI_PIPELINE_ID or $BUILD_ID)', idArg('CI run id'));
const targetId = (o: GateTarget) => gateWorkflowId(o.deployment, o.candidate, o.ciRun ?? ciRunFromEnv());

async function printGateResult(r: GateResult, config: Config, o: { json?: boolean; report?: string }) {
  const link = uiLink(config, r.gateId);
  writeReports(r, config, { report: o.report });
  commandExitCode = gateExitCode(r);
  if (o.json) printJson({ ...r, uiLink: link, exitCode: commandExitCode });
  else console.log(summarizeGate(r, link));
}

function addGateCommands(program: Command) {
  const gate = program
    .command('gate')
    .description('the deploy gate: compare a candidate with its baseline, decide, roll back on REJECT (exit 0 approve, 1 reject, 2 inconclusive, 3 error)');
  gateTarget(gate.command('start', { isDefault: true }).description('start the gate for a candidate (or attach to this CI run\'s gate)'))
    .requiredOption('--baseline <version>', 'the version it must not be worse than', idArg('baseline version'))
    .option('--wait', 'wait for the decision, showing progress, and exit with its code')
    .option('--timeout <duration>', 'with --wait: stop waiting after this long (exit 2; the gate keeps running)', durationArg)
    .option('--json', 'machine-readable output')
    .option('--report <file>', 'write the Markdown report here (also appended to $GITHUB_STEP_SUMMARY when set)')
    .option('--quality-drop <points>', 'tolerated quality drop', pointsArg('--quality-drop'))
    .option('--hallucination-increase <points>', 'tolerated hallucination-rate rise', pointsArg('--hallucination-increase'))
    .option('--toxicity-increase <points>', 'tolerated toxicity-rate rise', pointsArg('--toxicity-increase'))
    .option('--min-samples <n>', 'candidate samples before any verdict', intArg('min samples', 5, 1_000_000))
    .option('--max-wait <duration>', 'longest wait for enough samples (default 2h)', durationArg)
    .option('--check-every <duration>', 're-check interval (default 15m, the collection interval)', durationArg)
    .addOption(new Option('--on-inconclusive <what>', 'INCONCLUSIVE at the deadline means (default reject: fail safe)').choices(['reject', 'approve', 'hold']))
    .option('--rollback-webhook <url>', 'roll back by POSTing to this URL (HMAC-signed with OPTIINFRA_WEBHOOK_SECRET)')
    .option('--rollback-command <program>', 'roll back by running this program (no shell; see --rollback-arg)')
    .option('--rollback-arg <arg>', 'an argument for --rollback-command (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(
      async (o: GateTarget & {
        baseline: string;
        wait?: boolean;
        timeout?: string;
        json?: boolean;
        report?: string;
        qualityDrop?: number;
        hallucinationIncrease?: number;
        toxicityIncrease?: number;
        minSamples?: number;
        maxWait?: string;
        checkEvery?: string;
        onInconclusive?: 'reject' | 'approve' | 'hold';
        rollbackWebhook?: string;
        rollbackCommand?: string;
        rollbackArg?: string[];
      }) => {
        if (o.rollbackWebhook && o.rollbackCommand) throw new UsageError('give at most one of --rollback-webhook and --rollback-command');
        if (o.rollbackArg && !o.rollbackCommand) throw new UsageError('--rollback-arg needs --rollback-command');
        const tolerances = Object.fromEntries(
          Object.entries({
            qualityDrop: o.qualityDrop,
            hallucinationRateIncrease: o.hallucinationIncrease,
            toxicityRateIncrease: o.toxicityIncrease,
          }).filter(([, v]) => v !== undefined),
        );
        const input: GateInput = {
          deployment: o.deployment,
          baselineVersion: o.baseline,
          candidateVersion: o.candidate,
          tolerances,
          minSamples: o.minSamples,
          maxWait: o.maxWait,
          checkEvery: o.checkEvery,
          onInconclusive: o.onInconclusive,
          deployer: o.rollbackWebhook
            ? { type: 'webhook', url: o.rollbackWebhook }
            : o.rollbackCommand
              ? { type: 'command', argv: [o.rollbackCommand, ...(o.rollbackArg ?? [])] }
              : { type: 'dry-run' },
          requestedBy: process.env.GITHUB_ACTOR || process.env.GITLAB_USER_LOGIN || process.env.USER,
        };
        const config = runtimeConfig();
        const stores = await openStores(config);
        const client = await temporalClient(config);
        try {
          const { handle, attached, workflowId } = await startOrAttachGate(client, config, stores.db, input, o.ciRun ?? ciRunFromEnv());
          const link = uiLink(config, workflowId);
          console.error(`${attached ? 'attached to' : 'started'} ${workflowId}${link ? `\n  ${link}` : ''}`);
          if (!o.wait) {
            if (o.json) printJson({ workflowId, attached, uiLink: link });
            return;
          }
          const r = await waitForGate(handle, {
            timeoutMs: o.timeout ? msToNumber(o.timeout as StringValue) : undefined,
            onProgress: (p) => console.error(describeProgress(p)),
          });
          if (r === 'timeout') {
            console.error(`still undecided after ${o.timeout}; the gate keeps running: optiinfra gate status --deployment ${o.deployment} --candidate ${o.candidate}`);
            commandExitCode = GATE_EXIT.INCONCLUSIVE;
            return;
          }
          await printGateResult(r, config, o);
        } finally {
          await client.connection.close();
          await stores.close();
        }
      },
    );
  gateTarget(gate.command('status').description('progress of a running gate, or its decision'))
    .option('--json', 'machine-readable output')
    .option('--report <file>', 'write the Markdown report here (finished gates)')
    .action(async (o: GateTarget & { json?: boolean; report?: string }) =>
      withClient(async (client, config) => {
        const h = client.workflow.getHandle(targetId(o));
        let d;
        try {
          d = await h.describe();
        } catch (e) {
          if (e instanceof WorkflowNotFoundError) throw new UsageError(`no gate '${targetId(o)}'`);
          throw e;
        }
        if (d.status.name === 'RUNNING') {
          const p = await h.query<GateProgress>('progress');
          if (o.json) printJson({ workflowId: d.workflowId, status: 'RUNNING', progress: p, uiLink: uiLink(config, d.workflowId) });
          else console.log(`${d.workflowId} is running\n${describeProgress(p)}`);
          return;
        }
        if (d.status.name !== 'COMPLETED') throw new UsageError(`gate '${d.workflowId}' ended ${d.status.name}: see ${uiLink(config, d.workflowId) ?? 'the Temporal UI'}`);
        await printGateResult((await h.result()) as GateResult, config, o);
      }),
    );
  gateTarget(gate.command('override').description('a human decision that wins over the gate (recorded with who and why)'))
    .addOption(new Option('--action <action>', 'approve, reject (and roll back) or abort (stop, no rollback)').choices(['approve', 'reject', 'abort']).makeOptionMandatory())
    .requiredOption('--reason <text>', 'why')
    .option('--by <name>', 'who (default: $USER)', process.env.USER ?? '')
    .action(async (o: GateTarget & { action: Override['action']; reason: string; by: string }) =>
      withClient(async (client) => {
        const p = await overrideGate(client.workflow.getHandle(targetId(o)), { action: o.action, reason: o.reason, by: o.by });
        console.log(`override accepted by ${targetId(o)} (phase ${p.phase})`);
      }),
    );

  program
    .command('baseline')
    .description('compute (or recompute) the quality baseline of a model version from its scores')
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .requiredOption('--version <v>', 'model version', idArg('model version'))
    .option('--last <n>', 'the last N interactions of the version', intArg('--last', 1, 10_000_000))
    .option('--from <iso>', 'interactions from this time', isoArg)
    .option('--to <iso>', 'interactions before this time', isoArg)
    .option('--json', 'machine-readable output')
    .action(async (o: { deployment: string; version: string; last?: number; from?: string; to?: string; json?: boolean }) => {
      const input = { deployment: o.deployment, version: o.version, lastN: o.last, from: o.from, to: o.to };
      const parsed = baselineInputSchema.safeParse(input);
      if (!parsed.success) throw new UsageError(formatZodError(parsed.error));
      const config = runtimeConfig();
      const stores = await openStores(config);
      try {
        if (!(await getDeployment(stores.db, o.deployment))) throw new UsageError(`deployment '${o.deployment}' is not registered`);
      } finally {
        await stores.close();
      }
      await withClient(async (client) => {
        const rec = (await client.workflow.execute('computeBaseline', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `baseline/${o.deployment}/${o.version}`,
          workflowIdConflictPolicy: 'USE_EXISTING',
          args: [input],
        })) as BaselineRecord;
        if (o.json) return printJson(rec);
        const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
        console.log(
          `baseline ${rec.id}: ${rec.samples} samples (${rec.windowFrom ?? '-'} .. ${rec.windowTo ?? '-'})\n` +
            `quality ${pct(rec.stats.quality.mean)} ± ${pct(rec.stats.quality.sd)} (sd), hallucination rate ${pct(rec.stats.hallucination_rate.mean)}, toxicity rate ${pct(rec.stats.toxicity_rate.mean)}`,
        );
      });
    });

  program
    .command('compare')
    .description('A/B: compare two versions serving side by side with the gate\'s statistics')
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .requiredOption('--a <version>', 'version A (the reference)', idArg('version A'))
    .requiredOption('--b <version>', 'version B', idArg('version B'))
    .option('--last <n>', 'the last N interactions of each version', intArg('--last', 1, 10_000_000))
    .option('--json', 'machine-readable output')
    .option('--report <file>', 'write the Markdown report here')
    .action(async (o: { deployment: string; a: string; b: string; last?: number; json?: boolean; report?: string }) => {
      const input = { deployment: o.deployment, versionA: o.a, versionB: o.b, lastN: o.last };
      const parsed = compareInputSchema.safeParse(input);
      if (!parsed.success) throw new UsageError(formatZodError(parsed.error));
      await withClient(async (client, config) => {
        const r = (await client.workflow.execute('abCompare', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `compare/${o.deployment}/${o.a}-vs-${o.b}/${new Date().toISOString()}`,
          args: [input],
        })) as ComparisonResult;
        const md = renderComparisonReport({ deployment: r.deployment, versionA: r.versionA, versionB: r.versionB, look: r.look, a: r.a, b: r.b, explanation: r.explanation });
        if (o.report) writeFileSync(o.report, md);
        if (o.json) printJson(r);
        else console.log(`${r.outcome}: ${r.reason}\n${r.explanation.summary}`);
      });
    });
}

const money = (n: unknown) => (typeof n === 'number' ? `$${Math.round(n).toLocaleString('en-US')}` : '-');

export function formatAgentRun(r: AgentRunResult): string {
  if (r.status === 'failed') return `${r.agent}: FAILED: ${r.error}`;
  const rows = r.findings.map((f) => ({
    severity: f.severity,
    kind: f.kind,
    subject: f.subject.slice(0, 28),
    finding: f.title.slice(0, 90),
    monthly: money(f.monthlySavingUsd),
    annual: money(f.annualSavingUsd),
  }));
  return [
    `${r.agent}: ${r.findings.length} findings from ${r.dataPoints} data points (${r.window.from.slice(0, 16)} .. ${r.window.to.slice(0, 16)})`,
    ...r.warnings.map((w) => `  warning: ${w}`),
    table(rows),
    `summary (${r.narrative?.generatedBy ?? 'template'}): ${r.narrative?.summary ?? r.summary}`,
  ].join('\n');
}

function addAgentCommands(program: Command) {
  const infra = program.command('infra').description('infrastructure data the agents read: FOCUS cost exports, Prometheus / vLLM / DCGM metrics');
  infra
    .command('add')
    .description('register (or update) a source')
    .argument('<id>', 'source id (for metrics: the deployment or host it describes)', idArg('source id'))
    .option('--focus <dir>', 'a directory of FinOps FOCUS cost-and-usage CSV exports')
    .option('--scrape <url>', 'a /metrics endpoint (vLLM, DCGM exporter, node exporter) scraped directly')
    .option('--prometheus <url>', 'a Prometheus server, read with query_range')
    .option('--resource-id <id>', 'the host\'s ResourceId in the cost data (metrics sources)')
    .option('--instance-type <name>', 'the host\'s instance type (metrics sources)')
    .action(async (id: string, o: { focus?: string; scrape?: string; prometheus?: string; resourceId?: string; instanceType?: string }) => {
      const given = [o.focus, o.scrape, o.prometheus].filter(Boolean).length;
      if (given !== 1) throw new UsageError('give exactly one of --focus, --scrape or --prometheus');
      const candidate = o.focus
        ? { kind: 'focus', path: o.focus }
        : { kind: o.scrape ? 'scrape' : 'prometheus', url: o.scrape ?? o.prometheus, resourceId: o.resourceId, instanceType: o.instanceType };
      const parsed = infraSourceSchema.safeParse(candidate);
      if (!parsed.success) throw new UsageError(`invalid source: ${formatZodError(parsed.error)}`);
      const stores = await openStores(runtimeConfig());
      try {
        await upsertInfraSource(stores.db, id, parsed.data);
      } finally {
        await stores.close();
      }
      console.log(`infrastructure source ${id} registered (${parsed.data.kind})`);
    });
  infra
    .command('collect')
    .description('read every source into ClickHouse now')
    .option('--json', 'machine-readable output')
    .option('--schedule <interval>', 'instead of running now, create or update a schedule (e.g. 5m)', durationArg)
    .action(async (o: { json?: boolean; schedule?: string }) =>
      withClient(async (client, config) => {
        if (o.schedule) {
          const created = await ensureInfraSchedule(client, config, { every: o.schedule });
          console.log(`schedule ${INFRA_SCHEDULE_ID} ${created ? 'created' : 'updated'}: every ${o.schedule}`);
          return;
        }
        const r = (await client.workflow.execute('collectInfra', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `collect-infra/${new Date().toISOString()}`,
        })) as Array<{ id: string; rows: number; bad: number; error?: string }>;
        if (o.json) printJson(r);
        else console.log(table(r.map((x) => ({ source: x.id, rows: x.rows, bad: x.bad, error: x.error ?? '' }))));
      }),
    );

  program
    .command('review')
    .description('the optimisation review: the cost, performance, resource and application agents in parallel, then one executive summary')
    .option('--agents <list>', `comma-separated subset of ${AGENTS.join(',')}`, (v: string) => {
      const list = v.split(',').map((x) => x.trim()).filter(Boolean);
      const bad = list.filter((x) => !(AGENTS as readonly string[]).includes(x));
      if (bad.length || !list.length) throw new InvalidArgumentError(`unknown agent(s) ${bad.join(', ')}; known: ${AGENTS.join(', ')}`);
      return list as AgentName[];
    })
    .option('--days <n>', 'analysis window in days (default: 30 for cost, 1 for the others)', intArg('--days', 1, 366))
    .option('--schedule <interval>', 'instead of running now, create or update a schedule (e.g. 1d)', durationArg)
    .option('--json', 'machine-readable output')
    .action(async (o: { agents?: AgentName[]; days?: number; schedule?: string; json?: boolean }) =>
      withClient(async (client, config) => {
        if (o.schedule) {
          const created = await ensureReviewSchedule(client, config, { every: o.schedule, agents: o.agents, days: o.days });
          console.log(`schedule ${REVIEW_SCHEDULE_ID} ${created ? 'created' : 'updated'}: every ${o.schedule}`);
          return;
        }
        const workflowId = `review/${new Date().toISOString()}`;
        const link = uiLink(config, workflowId);
        console.error(`started ${workflowId}${link ? `\n  ${link}` : ''}`);
        const r = (await client.workflow.execute('optimizationReview', {
          taskQueue: config.temporal.taskQueue,
          workflowId,
          args: [{ agents: o.agents, days: o.days }],
        })) as ReviewResult;
        if (o.json) return printJson(r);
        for (const a of r.agents) console.log(`\n${formatAgentRun(a)}`);
        console.log(`\nEXECUTIVE SUMMARY (${r.summaryBy}):\n${r.summary}`);
      }),
    );

  program
    .command('recommendations')
    .description('stored recommendations of the latest run of each agent')
    .option('--agent <name>', 'only this agent')
    .option('--json', 'machine-readable output')
    .action(async (o: { agent?: string; json?: boolean }) => {
      if (o.agent && !(AGENTS as readonly string[]).includes(o.agent)) throw new UsageError(`unknown agent '${o.agent}' (known: ${AGENTS.join(', ')})`);
      const stores = await openStores(runtimeConfig());
      try {
        const rows = await latestRecommendations(stores.db, o.agent);
        if (o.json) return printJson(rows);
        console.log(
          table(
            rows.map((x) => ({
              agent: x.agent,
              severity: x.severity,
              subject: String(x.subject).slice(0, 28),
              recommendation: String(x.title).slice(0, 90),
              monthly: money(x.monthly_saving_usd ?? undefined),
              annual: money(x.annual_saving_usd ?? undefined),
              confidence: x.confidence,
            })),
          ),
        );
      } finally {
        await stores.close();
      }
    });

  program
    .command('ask')
    .description('ask an agent a question about the stored data (answered from the numbers only)')
    .argument('<agent>', AGENTS.join(' | '))
    .argument('<question>', 'the question, in quotes')
    .option('--days <n>', 'analysis window in days', intArg('--days', 1, 366))
    .option('--json', 'machine-readable output')
    .action(async (agent: string, question: string, o: { days?: number; json?: boolean }) => {
      if (!(AGENTS as readonly string[]).includes(agent)) throw new UsageError(`unknown agent '${agent}' (known: ${AGENTS.join(', ')})`);
      if (!question.trim() || question.length > 2000) throw new UsageError('the question must be 1-2000 characters');
      await withClient(async (client, config) => {
        const r = (await client.workflow.execute(`${agent}Agent`, {
          taskQueue: config.temporal.taskQueue,
          workflowId: `ask/${agent}/${new Date().toISOString()}`,
          args: [{ question, days: o.days }],
        })) as AgentRunResult;
        if (o.json) return printJson({ agent, question, status: r.status, error: r.error, answer: r.answer });
        if (r.status === 'failed') throw new UsageError(`the ${agent} agent could not answer: ${r.error}`);
        console.log(`${r.answer?.text}\n(${r.answer?.generatedBy})`);
      });
    });
}

export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  commandExitCode = EXIT.ok;
  try {
    await program.parseAsync(argv);
    return commandExitCode;
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
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof StackError || e instanceof GateUsageError) {
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
