/**
 * The benchmark run: every item of the labelled sets judged by the offline judge or by the LLM
 * (activities/collector/judges.ts `judgeInteraction`, the same prompts, modes, client, retries
 * and pacing as the collector), with at most `concurrency` LLM calls in flight, judgements read
 * from and written to the cache, and progress reported as it goes.
 *
 * A unit of work is one LLM judgement: an item in combined mode (one call returns all checks), an
 * item and one of its labelled checks in separate mode. Items with the same texts share a unit.
 * A configuration failure of the LLM (bad key, unknown model) or a spent daily budget stops the
 * run (thrown after the calls in flight have ended); every other failure is a failed check,
 * counted and not cached, so the next run tries it again. An aborted `signal` starts no further
 * judgement: the run ends when the calls in flight have, with what was judged (`interrupted`).
 *
 * An endpoint that misbehaves over the run stops it the same way, with what was judged and the
 * reason (`stopped`), instead of paying for every item in turn:
 * - a rate limit (429, or 498 of the flex tier) that outlasts LLM_MAX_WAIT: every further call
 *   would wait as long, and fail as well;
 * - `failuresInARow` judgements failing one after the other (an outage: 5xx, resets, timeouts,
 *   cut or unusable replies, each already retried by the client);
 * - a reply naming another model than the one asked for (a router's fallback, a wrong
 *   `--base-url`): that judgement is not the model's, so it is failed and never cached;
 * - the first `cannedAfter` replies of the run all the same, word for word, for different texts
 *   (a canned or stub answer): they are failed and never cached. Until the replies differ, the
 *   run's first judgements are held back from the cache, and written as soon as they do.
 * The tokens of failed calls are billed: they count in the usage like the others.
 */
import pLimit from 'p-limit';
import { ApplicationFailure } from '@temporalio/common';
import { CHECKS, type AnyCheckResult, type Check } from '../../common/types.js';
import type { JudgeMode } from '../../domain/collector/collection.js';
import { COMBINED_PROMPT_VERSION, JUDGE_PROMPT_VERSION } from '../../domain/judge/prompts.js';
import { judgeInteraction, type CheckOutcome, type JudgeLlm, type Usage } from '../collector/judges.js';
import { judgementKey, type CachedOutcome, type JudgementCache, type JudgementIdentity } from './cache.js';
import type { EvalItem } from './datasets.js';

export type EvalJudge =
  | { kind: 'offline' }
  | {
      kind: 'llm';
      llm: JudgeLlm;
      /** As stored with scores: 'groq:<model>'. */
      name: string;
      /** Where the requests go (no credentials). */
      endpoint: string;
      model: string;
      mode: JudgeMode;
      reasoningEffort: string;
    };

export interface UsageTotals {
  /** HTTP requests (retries included). */
  calls: number;
  promptTokens: number;
  /** Part of promptTokens. */
  cachedTokens: number;
  /** Reasoning included. */
  completionTokens: number;
  reasoningTokens: number;
}

export const noUsage = (): UsageTotals => ({ calls: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0, reasoningTokens: 0 });

function addUsage(to: UsageTotals, u: Pick<Usage, keyof UsageTotals>): void {
  to.calls += u.calls;
  to.promptTokens += u.promptTokens;
  to.cachedTokens += u.cachedTokens;
  to.completionTokens += u.completionTokens;
  to.reasoningTokens += u.reasoningTokens;
}

export interface ItemOutcome {
  status: 'ok' | 'failed' | 'abstained';
  result?: AnyCheckResult;
  reason?: string;
}

export interface ItemResult {
  item: EvalItem;
  /** Per labelled check; missing when the run ended before the item was judged. */
  outcomes: Partial<Record<Check, ItemOutcome>>;
}

export interface Progress {
  /** Units of work (judgements) in all, read from the cache, done so far (cache included), failed. */
  total: number;
  fromCache: number;
  done: number;
  failed: number;
  /** Usage of this run's calls so far. */
  usage: UsageTotals;
}

/** Why a run stopped before judging everything (besides an interrupt). */
export interface RunStop {
  /** 'LlmRateLimited', 'FailuresInARow', 'OtherModel' or 'CannedReplies'. */
  type: 'LlmRateLimited' | 'FailuresInARow' | 'OtherModel' | 'CannedReplies';
  /** What happened and what to do (no secrets). */
  reason: string;
}

export interface RunResult {
  results: ItemResult[];
  units: { total: number; fromCache: number; judged: number; failed: number; notRun: number };
  usage: {
    /** Every judgement the figures rest on: this run's calls and the cached judgements' calls. */
    total: UsageTotals;
    thisRun: UsageTotals;
  };
  /** Distinct reasons of failed checks (at most 5). */
  failureReasons: string[];
  interrupted: boolean;
  /** Set when the endpoint's behaviour stopped the run (see the module comment). */
  stopped?: RunStop;
}

export interface RunOptions {
  items: readonly EvalItem[];
  judge: EvalJudge;
  /** LLM judgements in flight at most (default 4). */
  concurrency?: number;
  /** LLM judgements only; none: judge everything. */
  cache?: JudgementCache;
  /** Removes secrets from failure reasons. */
  clean: (s: string) => string;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Judgements failing one after the other that stop the run (default: 8, at least `concurrency`). */
  failuresInARow?: number;
  /** Identical replies, from the run's first on, that stop the run as canned (default 20). */
  cannedAfter?: number;
}

export const DEFAULT_FAILURES_IN_A_ROW = 8;
export const DEFAULT_CANNED_AFTER = 20;

/**
 * Whether a reply's `model` is the model asked for: the same id, the same without the owner
 * prefix ('openai/gpt-oss-20b' and 'gpt-oss-20b'), or a dated snapshot of it ('gpt-4o-mini' and
 * 'gpt-4o-mini-2024-07-18'). An empty name says nothing, and is taken as the model asked for.
 */
export function sameModel(asked: string, answered: string): boolean {
  const a = asked.trim().toLowerCase();
  const b = answered.trim().toLowerCase();
  if (!b || a === b) return true;
  const bare = (x: string) => x.slice(x.lastIndexOf('/') + 1);
  if (bare(a) === bare(b)) return true;
  return [a, bare(a)].some((x) => b.startsWith(`${x}-`) && /^\d/.test(b.slice(x.length + 1)));
}

/** The tokens and requests a failed call reports in its details (the client's failures carry them: they are billed). */
function usageOfFailure(e: ApplicationFailure): UsageTotals {
  const d = (e.details?.[0] ?? {}) as Record<string, unknown>;
  const n = (k: string) => (typeof d[k] === 'number' && Number.isFinite(d[k]) && (d[k] as number) >= 0 ? (d[k] as number) : 0);
  return {
    calls: n('calls'),
    promptTokens: n('promptTokens'),
    cachedTokens: n('cachedTokens'),
    completionTokens: n('completionTokens'),
    reasoningTokens: n('reasoningTokens'),
  };
}

/** What the calls of one judgement did besides their successful replies. */
interface UnitCalls {
  /** Usage of the calls that failed (and of replies refused here). */
  failed: UsageTotals;
  /** Failure types of its calls. */
  types: Set<string>;
  /** The first failure message of a rate limit that outlasted LLM_MAX_WAIT. */
  rateLimited?: string;
  /** The model a reply named when it was another. */
  otherModel?: string;
}

/** The LLM of one judgement: the judge's own, watched for failures, their usage and the model its replies name. */
function watched(llm: JudgeLlm, model: string, calls: UnitCalls): JudgeLlm {
  return {
    async json(opts) {
      let r: Awaited<ReturnType<typeof llm.json<typeof opts.schema>>>;
      try {
        r = await llm.json(opts);
      } catch (e) {
        if (e instanceof ApplicationFailure) {
          addUsage(calls.failed, usageOfFailure(e));
          if (e.type) calls.types.add(e.type);
          if (e.type === 'LlmRateLimited') calls.rateLimited ??= e.message;
        }
        throw e;
      }
      if (!sameModel(model, r.model)) {
        calls.otherModel ??= r.model;
        addUsage(calls.failed, {
          calls: r.calls ?? 1,
          promptTokens: r.promptTokens,
          cachedTokens: r.cachedTokens ?? 0,
          completionTokens: r.completionTokens,
          reasoningTokens: r.reasoningTokens ?? 0,
        });
        calls.types.add('OtherModel');
        throw ApplicationFailure.create({
          type: 'LlmInvalidReply',
          message: `the endpoint answered as model '${r.model.slice(0, 200)}', not '${model}': the judgement is not kept`,
          nonRetryable: true,
        });
      }
      return r;
    },
  };
}

interface Unit {
  key: string;
  checks: Check[];
  identity?: JudgementIdentity;
  /** Indexes into the items. */
  items: number[];
}

const labelledChecks = (item: EvalItem): Check[] => CHECKS.filter((c) => item.labels[c] !== undefined);

function unitsOf(items: readonly EvalItem[], judge: EvalJudge): Unit[] {
  if (judge.kind === 'offline') return items.map((item, i) => ({ key: String(i), checks: labelledChecks(item), items: [i] }));
  const units = new Map<string, Unit>();
  const add = (i: number, checks: Check[], identity: JudgementIdentity) => {
    const key = judgementKey(identity, (items[i] as EvalItem).input);
    const u = units.get(key);
    if (u) u.items.push(i);
    else units.set(key, { key, checks, identity, items: [i] });
  };
  const base = { judge: judge.name, endpoint: judge.endpoint, model: judge.model, reasoningEffort: judge.reasoningEffort };
  items.forEach((item, i) => {
    const checks = labelledChecks(item);
    if (!checks.length) return;
    if (judge.mode === 'combined') add(i, [...CHECKS], { ...base, mode: 'combined', promptVersion: COMBINED_PROMPT_VERSION });
    else for (const check of checks) add(i, [check], { ...base, mode: 'separate', promptVersion: JUDGE_PROMPT_VERSION[check], check });
  });
  return [...units.values()];
}

const outcomeOf = (o: CheckOutcome | CachedOutcome): ItemOutcome =>
  o.status === 'ok' ? { status: 'ok', result: o.result } : { status: o.status, reason: o.reason ?? '' };

export async function runJudgeEval(o: RunOptions): Promise<RunResult> {
  const { items, judge } = o;
  const results: ItemResult[] = items.map((item) => ({ item, outcomes: {} }));
  const units = unitsOf(items, judge);
  const total = noUsage();
  const thisRun = noUsage();
  const reasons = new Set<string>();
  const progress: Progress = { total: units.length, fromCache: 0, done: 0, failed: 0, usage: thisRun };
  const report = () => o.onProgress?.({ ...progress, usage: { ...thisRun } });
  const concurrency = Math.max(1, Math.floor(o.concurrency ?? 4));
  const failuresInARow = Math.max(1, Math.floor(o.failuresInARow ?? Math.max(DEFAULT_FAILURES_IN_A_ROW, concurrency)));
  const cannedAfter = Math.max(2, Math.floor(o.cannedAfter ?? DEFAULT_CANNED_AFTER));

  const record = (u: Unit, outcomes: Array<CheckOutcome | CachedOutcome>) => {
    for (const i of u.items) {
      const r = results[i] as ItemResult;
      for (const out of outcomes) if (r.item.labels[out.check] !== undefined) r.outcomes[out.check] = outcomeOf(out);
    }
  };

  const todo: Unit[] = [];
  for (const u of units) {
    const hit = o.cache?.get(u.key);
    if (hit && u.checks.every((c) => hit.outcomes.some((x) => x.check === c))) {
      record(u, hit.outcomes);
      addUsage(total, hit.usage);
      progress.fromCache++;
      progress.done++;
    } else todo.push(u);
  }
  report();

  // A stopping failure aborts the calls in flight; an aborted `signal` or a stop for the
  // endpoint's behaviour (`halt`) only keeps new ones from starting, so the calls already paid
  // for end and are cached.
  const stop = new AbortController();
  const halt = new AbortController();
  const noMore = AbortSignal.any([stop.signal, halt.signal, ...(o.signal ? [o.signal] : [])]);
  let fatal: unknown;
  let notRun = 0;
  let stopped: RunStop | undefined;
  const haltFor = (type: RunStop['type'], reason: string) => {
    if (stopped || stop.signal.aborted) return;
    stopped = { type, reason: o.clean(reason) };
    halt.abort(new Error(reason));
  };
  let inARow = 0;
  let lastFailure = '';

  const fail = (u: Unit, reason: string) => {
    record(
      u,
      u.checks.map((check) => ({ check, status: 'failed' as const, reason })),
    );
    progress.failed++;
    if (reasons.size < 5) reasons.add(reason);
  };

  const cacheFailed = (e: unknown) => {
    if (!stop.signal.aborted) {
      fatal ??= e;
      stop.abort(e);
    }
  };
  /** A judgement held back from the cache: the file must still take it when it is written. */
  const cacheCheck = () => {
    try {
      o.cache?.check();
    } catch (e) {
      cacheFailed(e);
    }
  };
  const cachePut = (u: Unit, j: Awaited<ReturnType<typeof judgeInteraction>>) => {
    if (!o.cache || !u.identity) return;
    // A judgement that cannot be cached stops the run: the calls still to come would be paid
    // for and lost.
    try {
      o.cache.put({
        key: u.key,
        outcomes: j.outcomes.map((x) =>
          x.status === 'ok'
            ? { check: x.check, status: 'ok', result: x.result }
            : { check: x.check, status: 'abstained', reason: x.reason },
        ),
        usage: {
          calls: j.usage.calls,
          promptTokens: j.usage.promptTokens,
          completionTokens: j.usage.completionTokens,
          cachedTokens: j.usage.cachedTokens,
          reasoningTokens: j.usage.reasoningTokens,
        },
        at: new Date().toISOString(),
      });
    } catch (e) {
      cacheFailed(e);
    }
  };

  // Canned replies: while every reply of this run is the first one word for word, the
  // judgements are held back (neither recorded nor cached).
  let firstReply: string | undefined;
  let allSame = judge.kind === 'llm';
  let canned = 0;
  const held: Array<{ u: Unit; j: Awaited<ReturnType<typeof judgeInteraction>> }> = [];
  const keep = (u: Unit, j: Awaited<ReturnType<typeof judgeInteraction>>) => {
    record(u, j.outcomes);
    cachePut(u, j);
  };
  const release = () => {
    for (const h of held.splice(0)) keep(h.u, h.j);
  };
  const cannedReason = (n: number) =>
    `the endpoint gave the same reply, word for word, to ${n} different texts: it is not judging them (a canned, default or stub answer); ` +
    'those replies are not counted and not cached. Check --base-url / GROQ_BASE_URL and --model, and any proxy in between';

  const judgeUnit = async (u: Unit) => {
    if (noMore.aborted) {
      notRun++;
      return;
    }
    const input = (items[u.items[0] as number] as EvalItem).input;
    const calls: UnitCalls = { failed: noUsage(), types: new Set() };
    let j: Awaited<ReturnType<typeof judgeInteraction>>;
    try {
      j = await judgeInteraction({
        judge: judge.kind === 'offline' ? 'offline' : watched(judge.llm, judge.model, calls),
        mode: judge.kind === 'offline' ? 'separate' : judge.mode,
        checks: u.checks,
        input,
        clean: o.clean,
        signal: stop.signal,
      });
    } catch (e) {
      addUsage(thisRun, calls.failed);
      addUsage(total, calls.failed);
      if (!stop.signal.aborted) {
        fatal ??= e;
        stop.abort(e);
      }
      notRun++;
      return;
    }
    addUsage(thisRun, j.usage);
    addUsage(total, j.usage);
    addUsage(thisRun, calls.failed);
    addUsage(total, calls.failed);
    const failed = j.outcomes.filter((x) => x.status === 'failed');
    if (failed.length) {
      record(u, j.outcomes);
      progress.failed++;
      for (const f of failed) if (reasons.size < 5 && f.status === 'failed') reasons.add(f.reason);
      const first = failed[0];
      lastFailure = first?.status === 'failed' ? first.reason : lastFailure;
      inARow++;
      if (calls.otherModel !== undefined) {
        haltFor(
          'OtherModel',
          `the endpoint answered as model '${calls.otherModel.slice(0, 200)}' when '${judge.kind === 'llm' ? judge.model : ''}' was asked for: ` +
            'a judgement by another model is not kept (not counted, not cached). Check --base-url / GROQ_BASE_URL and --model (a router or proxy that falls back to another model)',
        );
      } else if (calls.rateLimited !== undefined) {
        haltFor(
          'LlmRateLimited',
          `the endpoint's rate limit lasts longer than LLM_MAX_WAIT: every further call would wait as long; run the same command again later (the judgements made are cached), or raise LLM_MAX_WAIT. The last: ${calls.rateLimited}`,
        );
      } else if (inARow >= failuresInARow) {
        haltFor(
          'FailuresInARow',
          `${inARow} judgements failed one after the other, each after the client's retries (LLM_MAX_RETRIES): the endpoint is failing; run the same command again when it answers (the judgements made are cached). The last: ${lastFailure}`,
        );
      }
    } else {
      inARow = 0;
      if (allSame) {
        const reply = JSON.stringify(j.outcomes.map((x) => (x.status === 'ok' ? x.result : x.status)));
        firstReply ??= reply;
        if (reply !== firstReply) {
          allSame = false;
          release();
        }
      }
      if (!allSame) keep(u, j);
      else if (canned) fail(u, cannedReason(canned));
      else {
        held.push({ u, j });
        cacheCheck();
        if (held.length >= cannedAfter) {
          canned = held.length;
          // Failed, not judged: they are done, as failed units.
          for (const h of held.splice(0)) fail(h.u, cannedReason(canned));
          haltFor('CannedReplies', cannedReason(canned));
        }
      }
    }
    progress.done++;
    report();
  };

  if (judge.kind === 'offline') {
    // Pure and fast: one after the other, yielding now and then so progress and Ctrl-C get through.
    for (const [n, u] of todo.entries()) {
      await judgeUnit(u);
      if (n % 200 === 199) await new Promise((r) => setImmediate(r));
    }
  } else {
    const limit = pLimit(concurrency);
    await Promise.all(todo.map((u) => limit(() => judgeUnit(u))));
  }
  // Fewer identical replies than prove anything: they are kept (and cached, a stop or not).
  if (canned === 0) release();
  if (fatal !== undefined) throw fatal;
  return {
    results,
    units: {
      total: units.length,
      fromCache: progress.fromCache,
      judged: progress.done - progress.fromCache,
      failed: progress.failed,
      notRun,
    },
    usage: { total, thisRun },
    failureReasons: [...reasons],
    interrupted: o.signal?.aborted === true && notRun > 0,
    ...(stopped ? { stopped } : {}),
  };
}
