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
 */
import pLimit from 'p-limit';
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

  // A stopping failure aborts the calls in flight; an aborted `signal` only keeps new ones from
  // starting, so the calls already paid for end and are cached.
  const stop = new AbortController();
  const noMore = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
  let fatal: unknown;
  let notRun = 0;

  const judgeUnit = async (u: Unit) => {
    if (noMore.aborted) {
      notRun++;
      return;
    }
    const input = (items[u.items[0] as number] as EvalItem).input;
    let j: Awaited<ReturnType<typeof judgeInteraction>>;
    try {
      j = await judgeInteraction({
        judge: judge.kind === 'offline' ? 'offline' : judge.llm,
        mode: judge.kind === 'offline' ? 'separate' : judge.mode,
        checks: u.checks,
        input,
        clean: o.clean,
        signal: stop.signal,
      });
    } catch (e) {
      if (!stop.signal.aborted) {
        fatal ??= e;
        stop.abort(e);
      }
      notRun++;
      return;
    }
    record(u, j.outcomes);
    addUsage(thisRun, j.usage);
    addUsage(total, j.usage);
    const failed = j.outcomes.filter((x) => x.status === 'failed');
    if (failed.length) {
      progress.failed++;
      for (const f of failed) if (reasons.size < 5 && f.status === 'failed') reasons.add(f.reason);
    } else if (o.cache && u.identity) {
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
        if (!stop.signal.aborted) {
          fatal ??= e;
          stop.abort(e);
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
    const limit = pLimit(Math.max(1, Math.floor(o.concurrency ?? 4)));
    await Promise.all(todo.map((u) => limit(() => judgeUnit(u))));
  }
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
  };
}
