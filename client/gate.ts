/**
 * The gate from a CI pipeline's side: start or attach (deterministic workflow id), wait with
 * progress, exit codes, Markdown report; status, override, baseline and compare.
 */
import { accessSync, appendFileSync, constants, existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { Config } from '../common/config.js';
import {
  gateInputSchema,
  gateParams,
  overrideSchema,
  type GateInput,
  type GateProgress,
  type GateResult,
  type Override,
} from '../domain/gate/types.js';
import { renderGateReport } from '../domain/gate/report.js';
import { formatZodError, ID_PATTERN } from '../common/types.js';
import { SA } from '../common/search-attributes.js';
import { getDeployment } from '../activities/storage/postgres/deployments.js';
import { storeDeployerUrl } from '../activities/storage/postgres/gates.js';
import type { Db } from '../activities/storage/postgres/db.js';
import { uiLink } from './runtime.js';
import { urlAddress } from '../common/secrets.js';

export class GateUsageError extends Error {}

export const GATE_EXIT = { APPROVE: 0, REJECT: 1, ABORTED: 1, INCONCLUSIVE: 2, error: 3 } as const;

/** CI run ids picked up from the environment, so a re-run of the same pipeline attaches. */
export function ciRunFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.GITHUB_RUN_ID || env.CI_PIPELINE_ID || env.BUILD_ID || undefined;
}

export function gateWorkflowId(deployment: string, candidate: string, ciRun?: string): string {
  if (ciRun !== undefined && !ID_PATTERN.test(ciRun)) {
    throw new GateUsageError(`CI run id '${ciRun.slice(0, 64)}' must be letters, digits, '.', '_', ':' or '-'`);
  }
  return `gate/${deployment}/${candidate}${ciRun ? `/${ciRun}` : ''}`;
}

/** Validate everything before anything starts: bad input starts nothing. */
export async function validateGate(db: Db, input: GateInput): Promise<GateInput> {
  const parsed = gateInputSchema.safeParse(input);
  if (!parsed.success) throw new GateUsageError(`invalid gate: ${formatZodError(parsed.error)}`);
  if (!(await getDeployment(db, parsed.data.deployment))) {
    throw new GateUsageError(
      `deployment '${parsed.data.deployment}' is not registered: add it with 'optiinfra deployment add ${parsed.data.deployment} --source-url URL'`,
    );
  }
  return input;
}

/**
 * A rollback webhook URL with credentials or a query (often a token) stays in PostgreSQL under
 * the gate's id (`secretUrl`); the workflow gets the URL without them (history, UI and reports
 * never show them). A fragment is never sent over HTTP: it is dropped.
 */
export function withoutUrlSecrets(input: GateInput): { input: GateInput; secretUrl?: string } {
  const d = input.deployer;
  if (d?.type !== 'webhook') return { input };
  const u = new URL(d.url);
  const bare = urlAddress(u) as string;
  if (!u.username && !u.password && !u.search) return { input: u.hash ? { ...input, deployer: { ...d, url: bare } } : input };
  return { input: { ...input, deployer: { ...d, url: bare, storedUrl: true } }, secretUrl: d.url };
}

/** Start the gate, or attach to the one this CI run already started (running or finished). */
export async function startOrAttachGate(
  client: Client,
  config: Config,
  db: Db,
  input: GateInput,
  ciRun?: string,
): Promise<{ handle: WorkflowHandle; attached: boolean; workflowId: string }> {
  await validateGate(db, input);
  const params = gateParams(gateInputSchema.parse(input));
  const workflowId = gateWorkflowId(input.deployment, input.candidateVersion, ciRun);
  const assertSameParams = async (): Promise<void> => {
    const d = await client.workflow.getHandle(workflowId).describe();
    const existing = d.memo?.gateParams;
    if (typeof existing === 'string' && existing !== params) {
      throw new GateUsageError(
        `gate '${workflowId}' already exists for this CI run with other parameters (${existing}); this run asks for (${params}). ` +
          'Re-run with the same parameters to attach to it, or give another --ci-run for a new gate',
      );
    }
  };
  try {
    // An existing gate keeps everything it was started with, its rollback URL included.
    await assertSameParams();
    return { handle: client.workflow.getHandle(workflowId), attached: true, workflowId };
  } catch (e) {
    if (!(e instanceof WorkflowNotFoundError)) throw e;
  }
  const split = withoutUrlSecrets(input);
  if (split.secretUrl !== undefined) await storeDeployerUrl(db, workflowId, split.secretUrl);
  const handle = await client.workflow.start('deployGate', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [split.input],
    // Two CI jobs racing for the same id end up on one gate.
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [
      { key: SA.deployment, value: input.deployment },
      { key: SA.kind, value: 'gate' },
      { key: SA.modelVersion, value: [input.baselineVersion, input.candidateVersion] },
    ],
    staticSummary: `Deploy gate: ${input.deployment} ${input.baselineVersion} → ${input.candidateVersion}`,
    memo: { gateParams: params },
  });
  // Two starts racing for one id both reach here, and the later one attaches to the earlier's
  // gate: it must ask for the same parameters (the gate checks its stored URL's address itself).
  await assertSameParams();
  return { handle, attached: false, workflowId };
}

export function describeProgress(p: GateProgress): string {
  const look = p.lastLook ? ` ${p.lastLook.reason}` : '';
  return `[${p.phase}] look ${p.looks}, ${p.samples} candidate samples (min ${p.minSamples}), deadline ${p.deadline}.${look}`;
}

/** How long `waitForGate` keeps trying to reach Temporal before it gives up (the gate runs on regardless). */
export const GATE_RECONNECT_MS = 10 * 60_000;

/**
 * A failure to reach the server (it restarts, the network drops, a proxy times out), as opposed
 * to an answer from it: gRPC UNAVAILABLE, DEADLINE_EXCEEDED or a reset stream, anywhere in the
 * error's causes. The client retries those for about 20 s itself; a longer outage ends here.
 */
export function isTemporalUnreachable(e: unknown): boolean {
  let c: unknown = e;
  for (let i = 0; c && typeof c === 'object' && i < 6; i++) {
    const code = (c as { code?: unknown }).code;
    if (code === 14 || code === 4) return true;
    if (code === 13 && /RST_STREAM|Connection dropped|ECONNRESET/i.test(String((c as { details?: unknown }).details ?? ''))) return true;
    c = (c as { cause?: unknown }).cause;
  }
  return false;
}

/** Temporal could not be reached for longer than the wait allows: the gate's decision is unknown. */
export class GateUnreachableError extends Error {
  constructor(
    readonly downMs: number,
    readonly lastError: string,
  ) {
    super(`cannot reach Temporal for ${Math.round(downMs / 1000)} s (${lastError})`);
  }
}

export interface WaitEvents {
  onProgress?: (p: GateProgress) => void;
  /** Temporal stopped answering (after the client's own retries); the gate itself runs on. */
  onLost?: (error: string) => void;
  /** Temporal answers again after `downMs`. */
  onReconnected?: (downMs: number) => void;
  /**
   * No worker polls the gate's task queue: its progress query timed out because nobody can answer
   * it, not because Temporal is down. Said once per absence; the wait goes on within the timeout.
   */
  onNoWorker?: () => void;
}

/**
 * Wait for the result, reporting progress when it changes; 'timeout' when `timeoutMs` passes
 * first. The deadline is measured on the monotonic clock (a step of the wall clock does not move
 * it). While Temporal cannot be reached the wait goes on, re-subscribing to the result, within
 * the deadline and at most `reconnectMs` (then GateUnreachableError; also at the deadline, since
 * whether the gate decided meanwhile is unknown).
 */
export async function waitForGate(
  handle: WorkflowHandle,
  opts: {
    timeoutMs?: number;
    pollMs?: number;
    reconnectMs?: number;
    now?: () => number;
    /** Whether a worker polls the task queue (asked when a query times out). */
    workerPolling?: () => Promise<boolean>;
  } & WaitEvents = {},
): Promise<GateResult | 'timeout'> {
  const now = opts.now ?? (() => performance.now());
  const pollMs = opts.pollMs ?? 2000;
  const until = opts.timeoutMs ? now() + opts.timeoutMs : Infinity;
  let done: GateResult | undefined;
  let failed: unknown;
  let following = false;
  let lastAttempt = -Infinity;
  let downSince: number | undefined;
  let lastError = '';
  let wake = () => {};
  const lost = (e: unknown) => {
    lastError = e instanceof Error ? e.message : String(e);
    if (downSince === undefined) {
      downSince = now();
      opts.onLost?.(lastError);
    }
  };
  const back = () => {
    if (downSince === undefined) return;
    const downMs = now() - downSince;
    downSince = undefined;
    opts.onReconnected?.(downMs);
  };
  const follow = () => {
    following = true;
    lastAttempt = now();
    (handle.result() as Promise<GateResult>)
      .then(
        (r) => {
          done = r;
        },
        (e: unknown) => {
          if (isTemporalUnreachable(e)) lost(e);
          else failed = e ?? new Error('gate failed');
        },
      )
      .finally(() => {
        following = false;
        wake();
      });
  };
  let querying = false;
  let noWorker = false;
  /** A query that timed out: an outage, unless Temporal answers that no worker polls the queue. */
  const unanswered = async (e: unknown) => {
    const polled = opts.workerPolling ? await opts.workerPolling().catch(() => undefined) : undefined;
    if (polled !== false) return lost(e);
    back();
    if (!noWorker) opts.onNoWorker?.();
    noWorker = true;
  };
  const query = () => {
    querying = true;
    handle
      .query<GateProgress>('progress')
      .then(
        (p) => {
          back();
          noWorker = false;
          const line = describeProgress(p);
          if (line !== last) opts.onProgress?.(p);
          last = line;
        },
        async (e: unknown) => {
          // Not yet started or already finished: the result says which. Unreachable: an outage.
          if (isTemporalUnreachable(e)) await unanswered(e);
        },
      )
      .finally(() => (querying = false));
  };
  let last = '';
  for (;;) {
    if (done) {
      back();
      return done;
    }
    if (failed) throw failed;
    const t = now();
    if (downSince !== undefined && (t >= until || t - downSince >= (opts.reconnectMs ?? GATE_RECONNECT_MS))) {
      throw new GateUnreachableError(t - downSince, lastError);
    }
    if (t >= until) return 'timeout';
    if (!following && t - lastAttempt >= Math.min(pollMs, 1000)) follow();
    if (!querying) query();
    await new Promise<void>((r) => {
      const timer = setTimeout(r, Math.max(0, Math.min(pollMs, until - now())));
      wake = () => {
        clearTimeout(timer);
        r();
      };
    });
    wake = () => {};
  }
}

export function gateExitCode(r: GateResult): number {
  return GATE_EXIT[r.decision];
}

export function summarizeGate(r: GateResult, link?: string): string {
  return [
    `decision: ${r.decision}${r.effectiveDecision !== r.decision ? ` (acted on as ${r.effectiveDecision})` : ''}`,
    `reason: ${r.reason}`,
    r.explanation ? `explanation (${r.explanation.generatedBy}): ${r.explanation.summary}` : '',
    r.override ? `override: ${r.override.action} by ${r.override.by} at ${r.override.at}: ${r.override.reason}` : '',
    r.rollback.status !== 'not-needed' ? `rollback: ${r.rollback.status} via ${r.rollback.deployer} (${r.rollback.detail})` : '',
    link ? `Temporal UI: ${link}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/**
 * Write the Markdown report to a file and/or the GitHub job summary. With `onError`, a target
 * that cannot be written is reported there and the other is still written (the decision must not
 * be lost to a report); without it the error is thrown.
 */
export function writeReports(
  r: GateResult,
  config: Config,
  opts: { report?: string; env?: NodeJS.ProcessEnv; onError?: (what: string, e: unknown) => void },
): string {
  const md = renderGateReport(r, { uiLink: uiLink(config, r.gateId) });
  const attempt = (what: string, write: () => void) => {
    try {
      write();
    } catch (e) {
      if (!opts.onError) throw e;
      opts.onError(what, e);
    }
  };
  if (opts.report) attempt(`the report ${opts.report}`, () => writeFileSync(opts.report!, md));
  const summary = (opts.env ?? process.env).GITHUB_STEP_SUMMARY;
  if (summary) attempt(`the job summary ${summary} ($GITHUB_STEP_SUMMARY)`, () => appendFileSync(summary, `${md}\n`));
  return md;
}

/** `--report`: a file that can be written (its folder exists, it is not a folder), checked before anything starts. */
export function reportPathProblem(path: string): string | undefined {
  try {
    if (existsSync(path)) {
      if (statSync(path).isDirectory()) return 'is a folder';
      accessSync(path, constants.W_OK);
    } else {
      const dir = dirname(path);
      if (!statSync(dir).isDirectory()) return `${dir} is not a folder`;
      accessSync(dir, constants.W_OK);
    }
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
  }
}

/** The command that shows this very gate (with its CI run id: from outside the run it would name another). */
export function gateStatusCommand(deployment: string, candidate: string, ciRun?: string): string {
  return `optiinfra gate status --deployment ${deployment} --candidate ${candidate}${ciRun ? ` --ci-run ${ciRun}` : ''}`;
}

export async function overrideGate(handle: WorkflowHandle, o: Override): Promise<GateProgress> {
  const parsed = overrideSchema.safeParse(o);
  if (!parsed.success) throw new GateUsageError(`invalid override: ${formatZodError(parsed.error)}`);
  try {
    return await handle.executeUpdate<GateProgress, [Override]>('override', { args: [parsed.data] });
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : e instanceof Error ? e.message : String(e);
    throw new GateUsageError(`override refused: ${cause}`);
  }
}
