/**
 * `optiinfra judge eval`: the benchmark to run before trusting a judge. The offline judge or the
 * LLM judge (Groq, or any OpenAI-compatible server and model) on labelled data: HaluEval QA and
 * general, the offensive-language tweets, and JSONL files in the format of
 * docs/judge-eval-format.md. Prints per set and check the confusion matrix, precision, recall,
 * F1, accuracy and AUROC, then calls, tokens and the estimated cost; `--json` prints one object.
 *
 * LLM judgements go through the product's LLM client: the same prompts, modes, retries and
 * pacing as the collector (the budget shared through PostgreSQL when limits are configured and
 * the database answers), at most `--concurrency` in flight. Each judgement is cached under the
 * stack home, so a run that stops (Ctrl-C, a spent budget) resumes where it was.
 */
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ApplicationFailure } from '@temporalio/common';
import { CacheWriteError, JudgementCache } from '../../activities/judge-eval/cache.js';
import { BUILTIN_SET_NAMES, EvalDataError, loadEvalSet, type EvalSet } from '../../activities/judge-eval/datasets.js';
import { normaliseBase, openAiBaseFetch, openAiBaseProblem } from '../../activities/judge-eval/endpoint.js';
import { DEFAULT_PRICED_MODEL, pricesFor, type Prices } from '../../activities/judge-eval/pricing.js';
import { progressReporter } from '../../activities/judge-eval/progress.js';
import { buildOutput, formatOutput, type JudgeDescription } from '../../activities/judge-eval/report.js';
import { runJudgeEval, type EvalJudge, type Progress, type RunResult } from '../../activities/judge-eval/runner.js';
import { LlmClient } from '../../activities/llm/client.js';
import { createPool, migrate, type Db } from '../../activities/storage/postgres/db.js';
import { MigrationError } from '../../activities/storage/migration-error.js';
import type { Config } from '../../common/config.js';
import { redact, secretsOf } from '../../common/secrets.js';
import { COMBINED_PROMPT_VERSION, JUDGE_PROMPT_VERSION } from '../../domain/judge/prompts.js';
import { OFFLINE_JUDGE_VERSION } from '../../domain/judge/offline-judge.js';
import { defaultHome } from '../../stack/paths.js';
import { resolveDataDir } from '../../stack/sim/collector-simulator.js';
import { runtimeConfig } from '../runtime.js';
import { intArg, UsageError, type CommandOutcome } from './args.js';
import { terminalText } from './format.js';

export const DEFAULT_SETS = ['qa', 'general', 'offensive'] as const;
export const DEFAULT_CONCURRENCY = 4;

export interface JudgeEvalOptions {
  judge?: 'offline' | 'llm';
  data?: string;
  set?: string[];
  limit?: number;
  split: 'all' | 'test';
  concurrency: number;
  mode?: 'combined' | 'separate';
  baseUrl?: string;
  model?: string;
  /** A directory, false for --no-cache, undefined for the default. */
  cache?: string | false;
  priceInput?: number;
  priceOutput?: number;
  priceCached?: number;
  localBudget?: boolean;
  json?: boolean;
}

const priceArg = (flag: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1000)
    throw new InvalidArgumentError(`${flag} must be USD per million tokens, from 0 to 1000 (e.g. 0.075)`);
  return n;
};

const baseUrlArg = (v: string) => {
  const problem = openAiBaseProblem(v);
  if (problem)
    throw new InvalidArgumentError(
      `${problem}; give the OpenAI-compatible base path, e.g. http://localhost:8000/v1 or https://api.groq.com/openai/v1`,
    );
  return normaliseBase(v);
};

const modelArg = (v: string) => {
  if (!v.trim() || v.length > 200 || /\s/.test(v.trim()))
    throw new InvalidArgumentError('must be a model id without spaces (at most 200 characters)');
  return v.trim();
};

/** `--set a,b --set c` → [a, b, c], each once. */
export function setList(values: readonly string[] | undefined): string[] {
  const list = (values?.length ? values : DEFAULT_SETS)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  if (!list.length) throw new UsageError(`--set needs a value: ${BUILTIN_SET_NAMES.join(', ')} or FILE.jsonl`);
  return [...new Set(list)];
}

const LLM_ONLY: Array<[keyof JudgeEvalOptions, string]> = [
  ['mode', '--mode'],
  ['baseUrl', '--base-url'],
  ['model', '--model'],
  ['priceInput', '--price-input'],
  ['priceOutput', '--price-output'],
  ['priceCached', '--price-cached'],
  ['localBudget', '--local-budget'],
];

export function registerJudgeCommands(program: Command, outcome: CommandOutcome): void {
  const judge = program.command('judge').description('the judge itself: benchmark it on labelled data before trusting it');
  judge
    .command('eval')
    .description(
      'judge labelled data sets with the offline or the LLM judge and print precision, recall, F1, accuracy, AUROC and the confusion matrix per check, with calls, tokens and cost',
    )
    .addOption(
      new Option(
        '--judge <judge>',
        'offline or llm (default: llm when GROQ_API_KEY is set and LLM_ENABLED is not false, else offline)',
      ).choices(['offline', 'llm']),
    )
    .option('--data <dir>', "directory of the data sets (default: $OPTIINFRA_DATA_DIR, else the repository's data/)")
    .option(
      '--set <sets...>',
      `data sets: ${BUILTIN_SET_NAMES.join(', ')} or FILE.jsonl (docs/judge-eval-format.md); repeat or comma-separate (default: ${DEFAULT_SETS.join(',')})`,
    )
    .option('--limit <n>', 'at most N items per set (the first N; HaluEval QA items come in pairs)', intArg('--limit', 1, 10_000_000))
    .addOption(
      new Option('--split <split>', 'all items, or only the 20 % test split of npm run judge:eval').choices(['all', 'test']).default('all'),
    )
    .option('--concurrency <n>', 'LLM judgements in flight at most', intArg('--concurrency', 1, 64), DEFAULT_CONCURRENCY)
    .addOption(new Option('--mode <mode>', 'LLM judge mode (default: LLM_JUDGE_MODE, else combined)').choices(['combined', 'separate']))
    .option(
      '--base-url <url>',
      'OpenAI-compatible base path the requests go to, + /chat/completions (e.g. http://localhost:8000/v1); default: GROQ_BASE_URL + /openai/v1, else Groq',
      baseUrlArg,
    )
    .option('--model <model>', 'model id (default: GROQ_MODEL, else openai/gpt-oss-20b)', modelArg)
    .option('--cache <dir>', 'directory of the judgement cache (default: <stack home>/judge-eval)')
    .option('--no-cache', 'neither read nor write cached judgements')
    .option('--price-input <usd>', `USD per million input tokens (default for ${DEFAULT_PRICED_MODEL}: 0.075)`, priceArg('--price-input'))
    .option('--price-output <usd>', `USD per million output tokens (default for ${DEFAULT_PRICED_MODEL}: 0.30)`, priceArg('--price-output'))
    .option('--price-cached <usd>', 'USD per million cached input tokens (default: half the input price)', priceArg('--price-cached'))
    .option('--local-budget', "pace LLM calls in this process only, not from the workers' shared budget in PostgreSQL")
    .option('--json', 'print one JSON object with everything on stdout')
    .action(async (o: JudgeEvalOptions) => {
      outcome.exitCode = await judgeEval(o);
    });
}

interface LlmSetup {
  judge: EvalJudge & { kind: 'llm' };
  description: JudgeDescription;
  prices: Prices | undefined;
  priceNote?: string;
  db?: Db;
}

/** Whether the configured plan limits anything (then the budget is shared through the database). */
const limited = (c: Config) => c.groq.plan !== 'unlimited' && Object.values(c.groq.limits).some((n) => n > 0);

async function sharedBudgetDb(config: Config, note: (s: string) => void): Promise<Db | undefined> {
  if (!config.databaseUrl) {
    note("pacing in this process only: no DATABASE_URL and no running stack, so the workers' shared budget is not drawn from");
    return undefined;
  }
  const db = createPool(config.databaseUrl, 2);
  try {
    await Promise.race([
      migrate(db),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref()),
    ]);
    return db;
  } catch (e) {
    await db.end().catch(() => undefined);
    const why = redact(e instanceof Error ? e.message : String(e), secretsOf(config));
    const what = e instanceof MigrationError ? `cannot be used: ${why}` : `did not answer (${why})`;
    note(
      `pacing in this process only: PostgreSQL (${redact(config.databaseUrl, secretsOf(config))}) ${what}; pass --local-budget to skip it`,
    );
    return undefined;
  }
}

async function llmSetup(o: JudgeEvalOptions, config: Config, note: (s: string) => void): Promise<LlmSetup> {
  if (!config.groq.apiKey) {
    throw new UsageError('the LLM judge needs GROQ_API_KEY (for a server without keys, any value), or use --judge offline');
  }
  const model = config.groq.model;
  const given = { inputPerM: o.priceInput, outputPerM: o.priceOutput, cachedInputPerM: o.priceCached };
  if (model !== DEFAULT_PRICED_MODEL && (o.priceInput !== undefined || o.priceOutput !== undefined || o.priceCached !== undefined)) {
    if (o.priceInput === undefined || o.priceOutput === undefined) {
      throw new UsageError(`the default prices are ${DEFAULT_PRICED_MODEL}'s: for ${model} pass both --price-input and --price-output`);
    }
  }
  const prices = pricesFor(model, given);
  const db = limited(config) && !o.localBudget ? await sharedBudgetDb(config, note) : undefined;
  // The OpenAI base path the requests go to.
  const endpoint = o.baseUrl ?? `${config.groq.baseURL ?? 'https://api.groq.com'}/openai/v1`;
  const llm = new LlmClient(config, { db, log: () => undefined, ...(o.baseUrl ? { fetch: openAiBaseFetch(o.baseUrl) } : {}) });
  const mode = o.mode ?? config.llm.judgeMode;
  const name = `groq:${model}`;
  const shownEndpoint = redact(endpoint, secretsOf(config));
  return {
    judge: { kind: 'llm', llm, name, endpoint: shownEndpoint, model, mode, reasoningEffort: config.llm.reasoningEffort },
    description: {
      kind: 'llm',
      name,
      model,
      endpoint: shownEndpoint,
      mode,
      promptVersion: mode === 'combined' ? COMBINED_PROMPT_VERSION : Object.values(JUDGE_PROMPT_VERSION).join(','),
      reasoningEffort: config.llm.reasoningEffort,
    },
    prices,
    ...(prices ? {} : { priceNote: `no default prices for ${model}: pass --price-input and --price-output` }),
    db,
  };
}

/** Exit code of a run that did not judge everything it was asked to (failures, a stop for the endpoint's behaviour). */
export const EXIT_INCOMPLETE = 2;

/**
 * The command; returns its exit code: 0 when every judgement asked for was made, 2 when some were
 * not (the figures cover the judged items only), 130 / 143 when interrupted by SIGINT / SIGTERM.
 * Usage problems and stopping failures throw UsageError.
 */
export async function judgeEval(o: JudgeEvalOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const started = performance.now();
  const sets = setList(o.set);
  const note = (s: string) => console.error(`note: ${s}`);
  // --base-url is an OpenAI base path: the client is given it as its base and the fetch strips
  // the /openai/v1 groq-sdk adds (activities/judge-eval/endpoint.ts).
  const config = runtimeConfig({
    ...env,
    ...(o.model ? { GROQ_MODEL: o.model } : {}),
    ...(o.baseUrl ? { GROQ_BASE_URL: o.baseUrl } : {}),
  });
  const kind = o.judge ?? (config.llm.enabled ? 'llm' : 'offline');
  if (kind === 'offline') {
    const extra = LLM_ONLY.filter(([k]) => o[k] !== undefined).map(([, flag]) => flag);
    if (extra.length) {
      throw new UsageError(
        `${extra.join(', ')} ${extra.length === 1 ? 'applies' : 'apply'} to the LLM judge only${o.judge ? '' : ' (no GROQ_API_KEY, or LLM_ENABLED=false: the offline judge runs; pass --judge llm with a key)'}`,
      );
    }
  }

  const dataDir = resolveDataDir(o.data).dir;
  let loaded: EvalSet[];
  try {
    loaded = sets.map((s) => loadEvalSet(s, { dataDir, limit: o.limit, split: o.split }));
  } catch (e) {
    if (e instanceof EvalDataError) throw new UsageError(e.message);
    throw e;
  }
  for (const s of loaded) {
    if (s.malformed)
      console.error(`warning: ${s.source}: ${s.malformed} malformed records skipped (${terminalText(s.malformedExamples.join('; '))})`);
  }
  const items = loaded.flatMap((s) => s.items);
  if (!items.length) throw new UsageError(`no items to judge in ${sets.join(', ')}${o.split === 'test' ? ' (test split)' : ''}`);

  const setup = kind === 'llm' ? await llmSetup(o, config, note) : undefined;
  try {
    const judge: EvalJudge = setup ? setup.judge : { kind: 'offline' };
    let cache: JudgementCache | undefined;
    if (setup && o.cache !== false) {
      const dir = path.resolve(typeof o.cache === 'string' ? o.cache : path.join(defaultHome(env), 'judge-eval'));
      try {
        cache = JudgementCache.open(dir, setup.judge.name);
      } catch (e) {
        throw new UsageError(`cannot use the cache directory ${dir}: ${(e as Error).message} (pass --cache DIR or --no-cache)`);
      }
      if (cache.ignoredLines) note(`${cache.file}: ${cache.ignoredLines} unusable lines ignored`);
    }

    // SIGINT (Ctrl-C) and SIGTERM (a cancelled CI job): start nothing new, let the calls in
    // flight end and be cached, then report; a second signal quits at once.
    const interrupt = new AbortController();
    let signalCode = 130;
    const onSignal = (sig: NodeJS.Signals) => {
      const code = sig === 'SIGTERM' ? 143 : 130;
      if (interrupt.signal.aborted) process.exit(code);
      signalCode = code;
      console.error(
        `\ninterrupted (${sig}): finishing the calls in flight (${sig === 'SIGINT' ? 'Ctrl-C' : 'a signal'} again to quit now)`,
      );
      interrupt.abort(new Error('interrupted'));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const progress = progressReporter(process.stderr, { label: kind === 'llm' ? 'judging' : 'judging (offline)' });
    let last: Progress | undefined;
    let run: RunResult;
    try {
      run = await runJudgeEval({
        items,
        judge,
        concurrency: o.concurrency,
        cache,
        clean: (s) => redact(s, secretsOf(config)),
        signal: interrupt.signal,
        onProgress: (p) => {
          last = p;
          progress.update(p);
        },
      });
    } catch (e) {
      progress.end();
      const made = last ? last.done - last.failed : 0;
      const counts = last
        ? ` ${made.toLocaleString('en-US')} of ${last.total.toLocaleString('en-US')} judgements made (${last.fromCache.toLocaleString('en-US')} from the cache); no figures are printed.`
        : '';
      const saved = `${counts}${cache ? ` Judgements made so far are cached in ${cache.file}: run the same command again to go on.` : ''}`;
      if (e instanceof CacheWriteError) {
        throw new UsageError(`${e.message}; the run stopped so that no judgement is paid for and lost (pass --cache DIR or --no-cache)`);
      }
      if (e instanceof ApplicationFailure) {
        const where =
          o.baseUrl && e.type === 'LlmModelNotFound'
            ? ` Requests went to ${o.baseUrl}/chat/completions: check --base-url and --model.`
            : '';
        throw new UsageError(`the LLM judge stopped: ${e.message.replace(/[.\s]+$/, '')}.${where}${saved}`);
      }
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    progress.end();

    const out = buildOutput({
      judge: setup?.description ?? { kind: 'offline', name: OFFLINE_JUDGE_VERSION, promptVersion: OFFLINE_JUDGE_VERSION },
      sets: loaded,
      run,
      prices: setup ? setup.prices : { inputPerM: 0, cachedInputPerM: 0, outputPerM: 0 },
      priceNote: setup?.priceNote,
      cache: cache ? { file: cache.file, entries: cache.size, ignoredLines: cache.ignoredLines } : undefined,
      seconds: (performance.now() - started) / 1000,
    });
    console.log(o.json ? JSON.stringify(out, null, 2) : formatOutput(out));
    if (run.interrupted) return signalCode;
    return out.complete ? 0 : EXIT_INCOMPLETE;
  } finally {
    await setup?.db?.end().catch(() => undefined);
  }
}
