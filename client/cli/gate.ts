/**
 * The deploy gate from the command line: `optiinfra gate [start] | status | override`, and the
 * statistics it rests on: `optiinfra baseline` and `optiinfra compare`.
 * The gate's exit code: 0 approve, 1 reject, 2 inconclusive, 3 error; 130 / 143 when interrupted
 * by SIGINT / SIGTERM while the gate keeps running.
 */
import { writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { Option, type Command } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { msToNumber, type StringValue } from '@temporalio/common';
import { getDeployment } from '../../activities/storage/postgres/deployments.js';
import type { Config } from '../../common/config.js';
import { formatZodError } from '../../common/types.js';
import type { BaselineRecord } from '../../domain/gate/baseline.js';
import { baselineInputSchema, compareInputSchema, type ComparisonResult } from '../../domain/gate/inputs.js';
import { renderComparisonReport } from '../../domain/gate/report.js';
import {
  gateInputSchema,
  overrideSchema,
  type GateInput,
  type GateProgress,
  type GateResult,
  type Override,
} from '../../domain/gate/types.js';
import {
  GATE_EXIT,
  GATE_RECONNECT_MS,
  GateUnreachableError,
  GateUsageError,
  ciRunFromEnv,
  gateStatusCommand,
  isTemporalUnreachable,
  reportPathProblem,
  describeProgress,
  gateExitCode,
  gateWorkflowId,
  overrideGate,
  startOrAttachGate,
  summarizeGate,
  waitForGate,
  writeReports,
} from '../gate.js';
import { hasWorkflowPollers, noWorkerText, openStores, runtimeConfig, temporalClient, uiLink, warnIfNoWorker } from '../runtime.js';
import { checkListArg, durationArg, EXIT, idArg, intArg, isoArg, pointsArg, UsageError, type CommandOutcome } from './args.js';
import { withClient, withStores } from './connect.js';
import { describeBaseline, printJson, terminalText } from './format.js';

interface GateTarget {
  deployment: string;
  candidate: string;
  ciRun?: string;
}

interface GateStartOptions extends GateTarget {
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
  rollbackTimeout?: number;
  allowUnmeasured?: Array<'hallucination' | 'toxicity'>;
}

const gateTarget = (c: Command) =>
  c
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .requiredOption('--candidate <version>', 'candidate model version', idArg('candidate version'))
    .option('--ci-run <id>', 'CI run id in the gate id (default: $GITHUB_RUN_ID, $CI_PIPELINE_ID or $BUILD_ID)', idArg('CI run id'));

const targetId = (o: GateTarget) => gateWorkflowId(o.deployment, o.candidate, o.ciRun ?? ciRunFromEnv());

async function printGateResult(r: GateResult, config: Config, o: { json?: boolean; report?: string }, outcome: CommandOutcome) {
  const link = uiLink(config, r.gateId);
  outcome.exitCode = gateExitCode(r);
  // The decision is the outcome: a report that cannot be written is a warning, not exit 3.
  writeReports(r, config, {
    report: o.report,
    onError: (what, e) =>
      console.error(`warning: could not write ${what} (${e instanceof Error ? e.message : String(e)}); the decision stands: ${r.decision}`),
  });
  if (o.json) printJson({ ...r, uiLink: link, exitCode: outcome.exitCode });
  else console.log(terminalText(summarizeGate(r, link), { newlines: true }));
}

/** The gate's input from the options, validated (with the CI run id) before anything connects. */
function gateInputOf(o: GateStartOptions): GateInput {
  // An empty value (an unset CI variable) is an error, never a silent dry-run.
  const webhook = o.rollbackWebhook !== undefined;
  const command = o.rollbackCommand !== undefined;
  if (webhook && command) throw new UsageError('give at most one of --rollback-webhook and --rollback-command');
  if (o.rollbackArg && !command) throw new UsageError('--rollback-arg needs --rollback-command');
  if (o.rollbackTimeout !== undefined && !webhook && !command)
    throw new UsageError('--rollback-timeout needs --rollback-webhook or --rollback-command');
  const timeout = o.rollbackTimeout === undefined ? {} : { timeoutSeconds: o.rollbackTimeout };
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
    deployer:
      o.rollbackWebhook !== undefined
        ? { type: 'webhook', url: o.rollbackWebhook, ...timeout }
        : o.rollbackCommand !== undefined
          ? { type: 'command', argv: [o.rollbackCommand, ...(o.rollbackArg ?? [])], ...timeout }
          : { type: 'dry-run' },
    ...(o.allowUnmeasured ? { allowUnmeasured: o.allowUnmeasured } : {}),
    requestedBy: process.env.GITHUB_ACTOR || process.env.GITLAB_USER_LOGIN || process.env.USER,
  };
  const parsed = gateInputSchema.safeParse(input);
  if (!parsed.success) throw new UsageError(`invalid gate: ${formatZodError(parsed.error)}`);
  // Without --wait nothing would wait: the command would exit 0 at once, not at the timeout.
  if (o.timeout !== undefined && !o.wait) throw new UsageError('--timeout needs --wait (it bounds the wait for the decision)');
  checkReport(o.report);
  targetId(o);
  return input;
}

/** A report that cannot be written is refused before the gate starts, not found out after it decided. */
function checkReport(report: string | undefined): void {
  const problem = report === undefined ? undefined : reportPathProblem(report);
  if (problem) throw new UsageError(`--report ${report} cannot be written (${problem})`);
}

/** How long a signal waits for a start already sent to Temporal to answer, so the line can say which gate runs. */
const START_SETTLE_MS = 2000;

/**
 * What the CI job's cancellation (SIGTERM, then SIGKILL after a grace period) or a Ctrl-C does
 * while the gate command runs: one line saying what happened to the gate and what to do, the
 * JSON document with --json, and exit 128 + the signal's number (130, 143) at once. A second
 * signal exits without waiting for anything. The gate itself is never cancelled: it runs on the
 * server, and a re-run of the job (same CI run id) attaches to it.
 */
function onInterrupt(o: GateStartOptions, config: Config) {
  const state: { phase: 'preparing' | 'starting' | 'waiting' | 'reporting'; workflowId?: string; starting?: Promise<unknown> } = {
    phase: 'preparing',
  };
  const hint = `re-run this job (same CI run id) to attach to it and get its decision, or: ${gateStatusCommand(o.deployment, o.candidate, o.ciRun ?? ciRunFromEnv())}`;
  let signalled = false;
  const finish = (signal: NodeJS.Signals, running: boolean | undefined, line: string): never => {
    const exitCode = 128 + (osConstants.signals[signal] ?? 15);
    console.error(line);
    if (o.json) {
      const id = state.workflowId;
      printJson({
        workflowId: id ?? null,
        status: running ? 'RUNNING' : running === false ? 'NOT_STARTED' : 'UNKNOWN',
        decision: null,
        interrupted: signal,
        exitCode,
        uiLink: id ? uiLink(config, id) : undefined,
      });
    }
    process.exit(exitCode);
  };
  const handler = (signal: NodeJS.Signals) => {
    const id = state.workflowId ?? targetId(o);
    if (signalled) {
      console.error(`interrupted again by ${signal}: exiting now (any gate ${id} keeps running; ${hint})`);
      process.exit(128 + (osConstants.signals[signal] ?? 15));
    }
    signalled = true;
    if (state.phase === 'reporting') return; // the decision is in: it is being printed
    if (state.phase === 'preparing')
      finish(signal, false, `interrupted by ${signal} before the gate was started: nothing was started; re-run the job to start it`);
    if (state.phase === 'waiting')
      finish(signal, true, `interrupted by ${signal} while waiting for ${id}: the gate keeps running and decides on its own; ${hint}`);
    // A start already sent: wait briefly for its answer so the line can say which gate runs.
    const answered = state.starting!.then(
      () => true,
      () => false,
    );
    void Promise.race([answered, new Promise<undefined>((r) => setTimeout(r, START_SETTLE_MS))]).then((started) =>
      started
        ? finish(signal, true, `interrupted by ${signal} after starting ${id}: the gate keeps running and decides on its own; ${hint}`)
        : finish(
            signal,
            undefined,
            `interrupted by ${signal} while starting ${id}: it may have started; a re-run of this job (same CI run id) attaches to it or starts it`,
          ),
    );
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const sig of signals) process.on(sig, handler);
  return {
    state,
    dispose: () => {
      for (const sig of signals) process.off(sig, handler);
    },
  };
}

/** With --json an error is a JSON document on stdout too (the message also goes to stderr). */
async function jsonErrors(json: boolean | undefined, workflowId: () => string | undefined, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (e) {
    if (json) printJson({ workflowId: workflowId() ?? null, error: e instanceof Error ? e.message : String(e), exitCode: EXIT.usage });
    throw e;
  }
}

async function startGate(o: GateStartOptions, outcome: CommandOutcome): Promise<void> {
  let workflowId: string | undefined;
  await jsonErrors(
    o.json,
    () => workflowId,
    async () => {
      const input = gateInputOf(o);
      const config = runtimeConfig();
      const interrupt = onInterrupt(o, config);
      try {
        const stores = await openStores(config);
        const client = await temporalClient(config).catch(async (e: unknown) => {
          await stores.close();
          throw e;
        });
        try {
          const ciRun = o.ciRun ?? ciRunFromEnv();
          const starting = startOrAttachGate(client, config, stores.db, input, ciRun).catch((e: unknown) => {
            if (!isTemporalUnreachable(e)) throw e;
            throw new GateUsageError(
              `cannot reach Temporal at ${config.temporal.address} while starting ${targetId(o)} (${e instanceof Error ? e.message : String(e)}): ` +
                'nothing was decided; re-run this job: it attaches to the gate if it started, or starts it',
            );
          });
          Object.assign(interrupt.state, { phase: 'starting', starting, workflowId: targetId(o) });
          const started = await starting;
          const { handle, attached } = started;
          workflowId = started.workflowId;
          const link = uiLink(config, workflowId);
          console.error(`${attached ? 'attached to' : 'started'} ${workflowId}${link ? `\n  ${link}` : ''}`);
          let warned = await warnIfNoWorker(client, config, 'the gate');
          if (!o.wait) {
            if (o.json) printJson({ workflowId, attached, uiLink: link });
            return;
          }
          interrupt.state.phase = 'waiting';
          const status = gateStatusCommand(o.deployment, o.candidate, ciRun);
          const r = await waitForGate(handle, {
            timeoutMs: o.timeout ? msToNumber(o.timeout as StringValue) : undefined,
            onProgress: (p) => console.error(terminalText(describeProgress(p))),
            onLost: (why) =>
              console.error(
                `lost contact with Temporal (${terminalText(why)}); the gate keeps running on the server: reconnecting and waiting on ` +
                  `(for up to ${GATE_RECONNECT_MS / 60_000} min${o.timeout ? `, within --timeout ${o.timeout}` : ''})`,
              ),
            onReconnected: (ms) =>
              console.error(`reconnected to Temporal after ${Math.round(ms / 1000)} s; still waiting for ${workflowId}`),
            workerPolling: () => hasWorkflowPollers(client, config.temporal.namespace, config.temporal.taskQueue),
            onNoWorker: () => {
              if (!warned) console.error(`${noWorkerText(config, 'the gate')}; still waiting for ${workflowId}`);
              warned = false;
            },
          }).catch((e: unknown) => {
            if (!(e instanceof GateUnreachableError)) throw e;
            throw new GateUsageError(
              `${e.message} while waiting for ${workflowId}: its decision is unknown here, the gate keeps running on the server; ` +
                `re-run this job (same CI run id) to attach to it and get its decision, or: ${status}`,
            );
          });
          interrupt.state.phase = 'reporting';
          if (r === 'timeout') {
            console.error(`still undecided after ${o.timeout}; the gate keeps running: ${status}`);
            outcome.exitCode = GATE_EXIT.INCONCLUSIVE;
            if (o.json)
              printJson({ workflowId, status: 'RUNNING', decision: null, timedOut: o.timeout, uiLink: link, exitCode: outcome.exitCode });
            return;
          }
          await printGateResult(r, config, o, outcome);
        } finally {
          await client.connection.close();
          await stores.close();
        }
      } finally {
        interrupt.dispose();
      }
    },
  );
}

async function gateStatus(o: GateTarget & { json?: boolean; report?: string }, outcome: CommandOutcome): Promise<void> {
  const id = targetId(o);
  checkReport(o.report);
  await withClient(async (client, config) => {
    const h = client.workflow.getHandle(id);
    const d = await h.describe().catch((e: unknown) => {
      if (e instanceof WorkflowNotFoundError) throw new UsageError(`no gate '${id}'`);
      throw e;
    });
    if (d.status.name === 'RUNNING') {
      // Without a worker nobody can answer the progress query: say so instead of timing out.
      if (await warnIfNoWorker(client, config, 'the gate')) {
        if (o.json) printJson({ workflowId: d.workflowId, status: 'RUNNING', progress: null, uiLink: uiLink(config, d.workflowId) });
        else console.log(`${d.workflowId} is running (its progress is known once a worker runs)`);
        return;
      }
      const p = await h.query<GateProgress>('progress');
      if (o.json) printJson({ workflowId: d.workflowId, status: 'RUNNING', progress: p, uiLink: uiLink(config, d.workflowId) });
      else console.log(`${d.workflowId} is running\n${terminalText(describeProgress(p))}`);
      return;
    }
    if (d.status.name !== 'COMPLETED')
      throw new UsageError(`gate '${d.workflowId}' ended ${d.status.name}: see ${uiLink(config, d.workflowId) ?? 'the Temporal UI'}`);
    await printGateResult((await h.result()) as GateResult, config, o, outcome);
  });
}

export function registerGateCommands(program: Command, outcome: CommandOutcome): void {
  const gate = program
    .command('gate')
    .description(
      'the deploy gate: compare a candidate with its baseline, decide, roll back on REJECT (exit 0 approve, 1 reject, 2 inconclusive, 3 error)',
    );
  gateTarget(gate.command('start', { isDefault: true }).description("start the gate for a candidate (or attach to this CI run's gate)"))
    .requiredOption('--baseline <version>', 'the version it must not be worse than', idArg('baseline version'))
    .option('--wait', 'wait for the decision, showing progress, and exit with its code')
    .option('--timeout <duration>', 'with --wait: stop waiting after this long (exit 2; the gate keeps running)', durationArg('1s', '30d'))
    .option('--json', 'machine-readable output')
    .option('--report <file>', 'write the Markdown report here (also appended to $GITHUB_STEP_SUMMARY when set)')
    .option('--quality-drop <points>', 'tolerated quality drop', pointsArg('--quality-drop'))
    .option('--hallucination-increase <points>', 'tolerated hallucination-rate rise', pointsArg('--hallucination-increase'))
    .option('--toxicity-increase <points>', 'tolerated toxicity-rate rise', pointsArg('--toxicity-increase'))
    .option('--min-samples <n>', 'candidate samples before any verdict', intArg('min samples', 5, 1_000_000))
    .option('--max-wait <duration>', 'longest wait for enough samples (default 2h, at most 30d)', durationArg('1s', '30d'))
    .option('--check-every <duration>', 're-check interval (default 15m, the collection interval)', durationArg('1s', '1d'))
    .addOption(
      new Option('--on-inconclusive <what>', 'INCONCLUSIVE at the deadline means (default reject: fail safe)').choices([
        'reject',
        'approve',
        'hold',
      ]),
    )
    .option('--rollback-webhook <url>', 'roll back by POSTing to this URL (HMAC-signed with OPTIINFRA_WEBHOOK_SECRET)')
    .option('--rollback-command <program>', 'roll back by running this program (no shell; see --rollback-arg)')
    .option('--rollback-arg <arg>', 'an argument for --rollback-command (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option(
      '--rollback-timeout <seconds>',
      'per delivery attempt of the webhook or command (default 30 / 300)',
      intArg('--rollback-timeout', 1, 3600),
    )
    .option(
      '--allow-unmeasured <checks>',
      'guards the judge may leave unmeasured without stopping an approval: hallucination, toxicity (comma-separated)',
      checkListArg,
    )
    .action((o: GateStartOptions) => startGate(o, outcome));
  gateTarget(gate.command('status').description('progress of a running gate, or its decision'))
    .option('--json', 'machine-readable output')
    .option('--report <file>', 'write the Markdown report here (finished gates)')
    .action((o: GateTarget & { json?: boolean; report?: string }) => gateStatus(o, outcome));
  gateTarget(gate.command('override').description('a human decision that wins over the gate (recorded with who and why)'))
    .addOption(
      new Option('--action <action>', 'approve, reject (and roll back) or abort (stop, no rollback)')
        .choices(['approve', 'reject', 'abort'])
        .makeOptionMandatory(),
    )
    .requiredOption('--reason <text>', 'why')
    .option('--by <name>', 'who (default: $USER)', process.env.USER ?? '')
    .action(async (o: GateTarget & { action: Override['action']; reason: string; by: string }) => {
      const override = { action: o.action, reason: o.reason, by: o.by };
      const parsed = overrideSchema.safeParse(override);
      if (!parsed.success) throw new UsageError(`invalid override: ${formatZodError(parsed.error)}`);
      const id = targetId(o);
      await withClient(async (client) => {
        const p = await overrideGate(client.workflow.getHandle(id), override);
        console.log(`override accepted by ${id} (phase ${p.phase})`);
      });
    });
}

export function registerBaselineCommand(program: Command): void {
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
      await withStores(async (stores) => {
        if (!(await getDeployment(stores.db, o.deployment))) throw new UsageError(`deployment '${o.deployment}' is not registered`);
      }, config);
      await withClient(async (client) => {
        await warnIfNoWorker(client, config, 'the baseline');
        const rec = (await client.workflow.execute('computeBaseline', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `baseline/${o.deployment}/${o.version}`,
          workflowIdConflictPolicy: 'USE_EXISTING',
          args: [input],
        })) as BaselineRecord;
        if (o.json) return printJson(rec);
        console.log(describeBaseline(rec));
      });
    });
}

export function registerCompareCommand(program: Command): void {
  program
    .command('compare')
    .description("A/B: compare two versions serving side by side with the gate's statistics")
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
        await warnIfNoWorker(client, config, 'the comparison');
        const r = (await client.workflow.execute('abCompare', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `compare/${o.deployment}/${o.a}-vs-${o.b}/${new Date().toISOString()}`,
          args: [input],
        })) as ComparisonResult;
        const md = renderComparisonReport({
          deployment: r.deployment,
          versionA: r.versionA,
          versionB: r.versionB,
          look: r.look,
          a: r.a,
          b: r.b,
          explanation: r.explanation,
        });
        if (o.report) writeFileSync(o.report, md);
        if (o.json) printJson(r);
        else console.log(`${r.outcome}: ${r.reason}\n${r.explanation.summary}`);
      });
    });
}
