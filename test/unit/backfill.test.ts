/** The backfill's input schema and its CLI's arguments (no servers). */
import { describe, expect, it } from 'vitest';
import { backfillWindow, describeBackfill } from '../../client/cli/backfill.js';
import { UsageError } from '../../client/cli/args.js';
import { formatZodError } from '../../common/types.js';
import {
  BACKFILL_DEFAULT_LIMIT,
  backfillInputSchema,
  coverageText,
  emptyBackfillTotals,
  windowSeconds,
  type BackfillResult,
} from '../../domain/collector/backfill.js';
import { runCli } from '../helpers/cli.js';

const from = '2026-11-20T00:00:00Z';

describe('backfill input', () => {
  it('fills the cycle defaults and keeps the window as given', () => {
    // Pins: batch size, parallelism and checks default as a cycle's do (250, 4, all three), the
    // limit to 10,000, and `to` stays absent (the workflow takes its own start time).
    const r = backfillInputSchema.parse({ deployment: 'd1', from });
    expect(r).toEqual({
      deployment: 'd1',
      from,
      limit: BACKFILL_DEFAULT_LIMIT,
      pageSize: 1000,
      batchSize: 250,
      maxConcurrentBatches: 4,
      pagesPerRun: 20,
      checks: ['quality', 'hallucination', 'toxicity'],
    });
    // A check named twice is judged once.
    expect(backfillInputSchema.parse({ deployment: 'd1', from, checks: ['toxicity', 'toxicity'] }).checks).toEqual(['toxicity']);
  });

  it.each([
    [{ deployment: 'd1', from: 'last week' }, /from: from must be an ISO-8601/],
    [{ deployment: 'd1', from: '2026-02-30T00:00:00Z' }, /from: from must be an ISO-8601/],
    [{ deployment: 'd1', from, to: from }, /to: to \(2026-11-20T00:00:00Z\) must be after from/],
    [{ deployment: 'd1', from, to: '2026-11-19T23:59:59Z' }, /must be after from/],
    [{ deployment: 'd1', from, limit: 0 }, /limit/],
    [{ deployment: 'd1', from, limit: 1_000_001 }, /limit/],
    [{ deployment: 'd1', from, limit: 2.5 }, /limit/],
    [{ deployment: 'd1', from, batchSize: 1001 }, /batchSize/],
    [{ deployment: 'd1', from, maxConcurrentBatches: 51 }, /maxConcurrentBatches/],
    [{ deployment: 'd1', from, checks: [] }, /checks/],
    [{ deployment: 'd1', from, modelVersion: "v1' OR 1=1" }, /modelVersion/],
    [{ deployment: "d1'; DROP TABLE scores", from }, /deployment/],
    [{ deployment: 'd1', from, Limit: 5 }, /Limit/],
    [{ deployment: 'd1', from, carry: { after: null } }, /carry\.settings/],
    [{ from }, /deployment/],
  ])('refuses %j', (input, msg) => {
    // Pins: every malformed field is refused with its name (the workflow raises InvalidInput with this text).
    const r = backfillInputSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(formatZodError(r.error!)).toMatch(msg);
  });

  it('accepts the largest limit and a carry a run hands on', () => {
    // Pins: 1,000,000 is allowed; a carry round-trips with its failure samples cut to 20.
    const totals = {
      ...emptyBackfillTotals(),
      scored: 5,
      failureSamples: Array.from({ length: 30 }, (_, i) => ({ id: `i${i}`, check: 'quality' as const, reason: 'x' })),
    };
    const settings = {
      judge: 'offline',
      promptVersions: { quality: 'a', hallucination: 'b', toxicity: 'c' },
      judgeTaskQueue: 'q',
      llmTimeoutSec: 30,
      llmMaxRetries: 3,
    };
    const r = backfillInputSchema.parse({
      deployment: 'd1',
      from,
      limit: 1_000_000,
      carry: { after: 'd1-0042', settings, startedAt: 1, totals },
    });
    expect(r.limit).toBe(1_000_000);
    expect(r.carry?.totals.scored).toBe(5);
    expect(r.carry?.totals.failureSamples).toHaveLength(20);
  });

  it('bounds a window in whole seconds, half-open', () => {
    // Pins: ts ≥ from and ts < to on whole seconds: 10:00:00.5 starts at 10:00:01; a `to` of
    // 10:00:00.5 still takes the interaction stamped 10:00:00.
    expect(windowSeconds('2026-11-20T10:00:00.500Z', '2026-11-20T10:00:00.500Z')).toEqual({
      fromSec: Date.parse('2026-11-20T10:00:01Z') / 1000,
      toSec: Date.parse('2026-11-20T10:00:01Z') / 1000,
    });
    expect(windowSeconds('2026-11-20T10:00:00Z', '2026-11-20T11:00:00Z')).toEqual({
      fromSec: Date.parse('2026-11-20T10:00:00Z') / 1000,
      toSec: Date.parse('2026-11-20T11:00:00Z') / 1000,
    });
  });
});

describe('backfill CLI arguments', () => {
  const now = new Date('2026-12-01T12:00:00Z');

  it('reads --since, --from and --to into a window', () => {
    // Pins: the default is the last 7 days; --since counts back from now; --to defaults to now.
    expect(backfillWindow({}, now)).toEqual({ from: '2026-11-24T12:00:00.000Z', to: '2026-12-01T12:00:00.000Z' });
    expect(backfillWindow({ since: '2h' }, now)).toEqual({ from: '2026-12-01T10:00:00.000Z', to: '2026-12-01T12:00:00.000Z' });
    expect(backfillWindow({ from: '2026-11-01T00:00:00.000Z' }, now)).toEqual({
      from: '2026-11-01T00:00:00.000Z',
      to: '2026-12-01T12:00:00.000Z',
    });
    expect(backfillWindow({ from: '2026-11-01T00:00:00.000Z', to: '2026-11-02T00:00:00.000Z' }, now).to).toBe('2026-11-02T00:00:00.000Z');
  });

  it.each([
    [{ since: '7d', from: '2026-11-01T00:00:00.000Z' }, /either --since or --from\/--to/],
    [{ to: '2026-11-02T00:00:00.000Z' }, /--to needs --from/],
    [{ from: '2026-11-02T00:00:00.000Z', to: '2026-11-02T00:00:00.000Z' }, /the window is empty: --from .* must be before --to/],
    [{ from: '2026-11-03T00:00:00.000Z', to: '2026-11-02T00:00:00.000Z' }, /the window is empty/],
    [{ from: '2026-12-02T00:00:00.000Z', to: '2026-12-03T00:00:00.000Z' }, /the window starts in the future/],
    [{ from: '2026-12-01T12:00:00.000Z' }, /the window starts in the future/],
  ])('refuses %j', (o, msg) => {
    // Pins: each bad window is a UsageError (exit 3) that says what is wrong.
    expect(() => backfillWindow(o, now)).toThrow(UsageError);
    expect(() => backfillWindow(o, now)).toThrow(msg);
  });

  it.each([
    [['--limit', '0'], /limit must be an integer from 1 to 1000000/],
    [['--limit', '1000001'], /limit must be an integer from 1 to 1000000/],
    [['--limit', '0x10'], /limit must be an integer/],
    [['--since', '5x'], /must look like 30s, 15m, 2h or 1d/],
    [['--since', '20y'], /must look like/],
    [['--from', 'yesterday'], /must be an ISO-8601 date/],
    [['--version', "v1' OR '1"], /model version must be/],
    [['--batch-size', '0'], /batch size must be an integer from 1 to 1000/],
    [['--from', '2999-01-01T00:00:00Z'], /the window starts in the future/],
    [['--since', '1d', '--from', '2026-01-01'], /either --since or --from/],
  ])('exits 3 before connecting on %j', async (args, msg) => {
    // Pins: bad arguments are refused by the CLI itself (servers unreachable here), with exit 3.
    const r = await runCli(['backfill', '--deployment', 'd1', ...args]);
    expect(r.code, r.out).toBe(3);
    expect(r.out).toMatch(msg);
    expect(r.out).not.toMatch(/ECONNREFUSED|127\.0\.0\.1:1/);
  });

  it('requires --deployment', async () => {
    // Pins: without a deployment nothing starts.
    const r = await runCli(['backfill', '--since', '1d']);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/--deployment/);
  });

  it('prints the result with its coverage and what is left', () => {
    // Pins: the summary names the judge, the counts, the coverage as a share and the limit note.
    const r: BackfillResult = {
      ...emptyBackfillTotals(),
      pages: 3,
      seen: 2500,
      alreadyScored: 500,
      selected: 2000,
      scored: 5900,
      failed: 100,
      deployment: 'd1',
      from: '2026-11-24T12:00:00.000Z',
      to: '2026-12-01T12:00:00.000Z',
      judge: 'groq:m',
      promptVersions: { quality: 'a', hallucination: 'a', toxicity: 'a' },
      complete: false,
      after: 'd1-2500',
      coverage: { interactions: 4000, scored: 2450 },
      startedAt: '2026-12-01T12:00:00.000Z',
      note: 'limit of 2000 interactions reached at id d1-2500: start the backfill again to score the rest of the window',
    };
    const text = describeBackfill(r, 'backfill/d1/x');
    expect(text).toMatch(/2,500 interactions read in 3 pages, 500 already scored, 2,000 sent to the judge/);
    expect(text).toMatch(/5,900 scored, 0 already stored, 0 abstained, 100 failed/);
    expect(text).toMatch(/coverage of the window: 2,450 of 4,000 interactions \(61\.3 %\) scored by groq:m/);
    expect(text).toMatch(/start the backfill again/);
    expect(coverageText({ interactions: 0, scored: 0 })).toBe('0 of 0 interactions (0 %)');
  });
});
