/**
 * Argument parsing and validation shared by the `optiinfra` commands, the usage error they throw,
 * and the exit codes.
 */
import { InvalidArgumentError } from 'commander';
import { calendarDateExists, durationMs, ID_PATTERN, parseUtcDate } from '../../common/types.js';
import { AGENTS, type AgentName } from '../../domain/agents/types.js';

/** Exit codes: 0 success, 3 usage or infrastructure error (the gate adds 1 reject, 2 inconclusive). */
export const EXIT = { ok: 0, usage: 3 } as const;

/** Bad input or a missing precondition: printed as `error: <message>`, exit 3. */
export class UsageError extends Error {}

/** Exit code set by commands whose outcome is not plain success (the gate). */
export interface CommandOutcome {
  exitCode: number;
}

export const idArg = (what: string) => (v: string) => {
  if (!ID_PATTERN.test(v)) {
    throw new InvalidArgumentError(
      `${what} must be 1-128 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit`,
    );
  }
  return v;
};

/**
 * A number written in decimal (optionally signed, with a fraction or an exponent): Number()
 * alone reads '' and '  ' as 0 and '0x10' as 16. The digits around the point split one way only
 * (`\d+\.?\d*` took quadratic time on a long run of digits).
 */
const DECIMAL = /^[+-]?(\d+(?:\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;
const decimal = (v: string) => (DECIMAL.test(v.trim()) ? Number(v) : Number.NaN);

export const intArg = (what: string, min: number, max: number) => (v: string) => {
  const n = decimal(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}`);
  return n;
};

/** Smallest sample rate: below it (about one interaction in 10,000) a deployment would never get a baseline. */
export const MIN_SAMPLE_RATE = 0.0001;

/** `--sample-rate`: a plain decimal fraction from MIN_SAMPLE_RATE to 1 (no hex, no percent sign). */
export const sampleRateArg = (v: string): number => {
  const t = v.trim();
  const n = decimal(t);
  if (!(n >= MIN_SAMPLE_RATE && n <= 1)) {
    const hint = t.endsWith('%') ? ' (a share, not a percentage: 0.5 for 50 %)' : '';
    throw new InvalidArgumentError(`sample rate must be a decimal number from ${MIN_SAMPLE_RATE} to 1${hint}; got '${t.slice(0, 40)}'`);
  }
  return n;
};

/** A duration like 30s, 15m, 2h or 1d, between `min` and `max` (given the same way). */
export const durationArg =
  (min = '1s', max = '365d') =>
  (v: string) => {
    const ms = durationMs(v);
    if (Number.isNaN(ms)) throw new InvalidArgumentError('must look like 30s, 15m, 2h or 1d');
    if (ms < durationMs(min) || ms > durationMs(max)) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return v;
  };

/** Percentage points (0-100) as a fraction: "5" → 0.05. */
export const pointsArg = (what: string) => (v: string) => {
  const n = decimal(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${what} must be a number of points, e.g. 5`);
  if (n < 0) throw new InvalidArgumentError(`${what} must not be negative`);
  if (n > 100) throw new InvalidArgumentError(`${what} must be at most 100 points`);
  return n / 100;
};

/** An ISO-8601 date or date-time; one without a zone is UTC, whatever the process's TZ. */
export const isoArg = (v: string) => {
  const ms = ISO_DATE.test(v.trim()) && calendarDateExists(v) ? parseUtcDate(v) : Number.NaN;
  if (Number.isNaN(ms)) throw new InvalidArgumentError('must be an ISO-8601 date, e.g. 2026-11-25T10:00:00Z (UTC when no zone is given)');
  return new Date(ms).toISOString();
};
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** A comma-separated subset of the agents. */
export const agentListArg = (v: string): AgentName[] => {
  const list = v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const bad = list.filter((x) => !isAgent(x));
  if (bad.length || !list.length) throw new InvalidArgumentError(`unknown agent(s) ${bad.join(', ')}; known: ${AGENTS.join(', ')}`);
  return list as AgentName[];
};

export const isAgent = (name: string): name is AgentName => (AGENTS as readonly string[]).includes(name);

/** Throws a UsageError unless `name` is an agent. */
export function requireAgent(name: string): AgentName {
  if (!isAgent(name)) throw new UsageError(`unknown agent '${name}' (known: ${AGENTS.join(', ')})`);
  return name;
}

/** A comma-separated subset of the checks whose gate guard may go unmeasured. */
export const checkListArg = (v: string): Array<'hallucination' | 'toxicity'> => {
  const list = v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const ok = (x: string): x is 'hallucination' | 'toxicity' => x === 'hallucination' || x === 'toxicity';
  const bad = list.filter((x) => !ok(x));
  if (bad.length || !list.length) throw new InvalidArgumentError(`unknown check(s) ${bad.join(', ')}; allowed: hallucination, toxicity`);
  return list.filter(ok);
};
