/**
 * The pure logic of scheduled collection over time: the schedule's policies for every interval
 * from 1 minute to 24 hours, what `schedule create` says when it updates a schedule, and record
 * timestamps read the same whatever the worker's TZ and across a daylight-saving change.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../../common/config.js';
import { formatInterval, formatOffset, scheduleChanges, schedulePolicies, spreadOffsetMs, upsertSchedule } from '../../client/schedules.js';
import { scheduleOutcomeLine, triggerSkippedLine } from '../../client/cli/schedules.js';
import { interactionSchema } from '../../domain/collector/record.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

describe('schedule policies for every interval', () => {
  it.each([
    ['1m', MIN, HOUR],
    ['15m', 15 * MIN, HOUR],
    ['2h', 2 * HOUR, 2 * HOUR],
    ['1d', 24 * HOUR, 24 * HOUR],
  ])(
    'every %s: never two cycles at once, and a run missed in an outage is caught up once (failed before for intervals over an hour: a daily run missed by more than an hour was lost)',
    (_every, ms, window) => {
      const p = schedulePolicies(ms);
      expect(p.overlap).toBe(ScheduleOverlapPolicy.SKIP);
      expect(p.catchupWindow).toBe(window);
      expect(p.pauseOnFailure).toBe(false);
    },
  );

  it.each([
    [MIN, '1m'],
    [90_000, '90s'],
    [HOUR, '1h'],
    [90 * MIN, '90m'],
    [24 * HOUR, '1d'],
  ])('%d ms reads as %s', (ms, text) => expect(formatInterval(ms)).toBe(text));
});

describe('schedule create run again with other options', () => {
  it('names every change: interval, pause, budget, batches, catch-up window (failed before: "updated" only)', () => {
    expect(
      scheduleChanges(
        { everyMs: 15 * MIN, paused: true, arg: { deployment: 'd', budgetMinutes: 15, maxConcurrentBatches: 8 }, catchupWindowMs: HOUR },
        { everyMs: 24 * HOUR, paused: false, arg: { deployment: 'd', budgetMinutes: 1440 }, catchupWindowMs: 24 * HOUR },
      ),
    ).toEqual([
      'every 15m → 1d',
      'paused → running (unpaused)',
      'LLM budget per cycle (minutes) 15 → 1440',
      'max concurrent batches 8 → default',
      'catch-up window 1h → 1d',
    ]);
    const same = { everyMs: 15 * MIN, paused: false, arg: { deployment: 'd', budgetMinutes: 15 }, catchupWindowMs: HOUR };
    expect(scheduleChanges(same, { ...same })).toEqual([]);
  });

  it('the line printed says created, unchanged, or each change', () => {
    expect(scheduleOutcomeLine('collect/d', '15m', { created: true, changes: [] })).toBe('schedule collect/d created: every 15m');
    expect(scheduleOutcomeLine('collect/d', '15m', { created: false, changes: [] })).toBe('schedule collect/d unchanged: every 15m');
    expect(scheduleOutcomeLine('collect/d', '30m', { created: false, changes: ['every 15m → 30m', 'running → paused'] })).toBe(
      'schedule collect/d updated: every 15m → 30m; running → paused',
    );
    expect(triggerSkippedLine('collect/d', 'collect/d-2025-01-01T00:00:00Z')).toMatch(
      /cycle collect\/d-2025-01-01T00:00:00Z is still running, so no second cycle was started/,
    );
  });

  it('the update compares against the schedule as Temporal describes it (failed before: nothing compared)', async () => {
    let written: unknown;
    const prev = {
      spec: { intervals: [{ every: 15 * MIN }] },
      action: { type: 'startWorkflow', args: [{ deployment: 'shop-bot', budgetMinutes: 15, maxConcurrentBatches: 8 }] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: HOUR },
      state: { paused: false },
    };
    const client = {
      schedule: {
        getHandle: () => ({
          update: async (fn: (p: unknown) => unknown) => {
            written = fn(prev);
          },
        }),
      },
    } as unknown as Client;
    const config = { temporal: { taskQueue: 'q' } } as Config;
    const o = await upsertSchedule(client, config, { deployment: 'shop-bot', every: '1m' });
    const offset = spreadOffsetMs('shop-bot', MIN);
    // The interval changed, so the offset moved with it: not said apart.
    expect(o).toEqual({
      created: false,
      changes: ['every 15m → 1m', 'LLM budget per cycle (minutes) 15 → 1', 'max concurrent batches 8 → default'],
    });
    expect(written).toMatchObject({
      spec: { intervals: [{ every: '1m', offset }] },
      policies: { catchupWindow: HOUR },
      state: { paused: false },
    });
  });
});

describe('a fleet of deployments on one interval', () => {
  // Pins: each deployment's collection runs at its own offset into the interval, the same on
  // every `schedule create`. Failed before: every schedule fired on the same epoch-aligned
  // instant, so 300 deployments every 15m started 300 cycles in the same second.
  const names = Array.from({ length: 300 }, (_, i) => `chat-${i}`);

  it.each([
    ['1m', MIN],
    ['15m', 15 * MIN],
    ['1h', HOUR],
    ['1d', 24 * HOUR],
  ])('every %s: offsets are whole seconds inside the interval, spread over it, and stable', (_every, ms) => {
    const offsets = names.map((n) => spreadOffsetMs(n, ms));
    for (const o of offsets) {
      expect(Number.isInteger(o / 1000)).toBe(true);
      expect(o).toBeGreaterThanOrEqual(0);
      expect(o).toBeLessThan(ms);
    }
    expect(names.map((n) => spreadOffsetMs(n, ms))).toEqual(offsets);
    // Ten equal slices of the interval each get some 30 of the 300 deployments: none gets more
    // than twice its share, none is empty.
    const slices = new Array(10).fill(0);
    for (const o of offsets) slices[Math.floor((o / ms) * 10)]++;
    expect(Math.max(...slices)).toBeLessThanOrEqual(60);
    expect(Math.min(...slices)).toBeGreaterThan(0);
  });

  it('an offset that changes is said, an unchanged one is not', () => {
    const a = { everyMs: 15 * MIN, offsetMs: 0 };
    expect(scheduleChanges(a, { ...a, offsetMs: 432_000 })).toEqual(['runs at +0s → +7m12s into each interval']);
    expect(scheduleChanges({ everyMs: 15 * MIN }, { everyMs: 15 * MIN, offsetMs: 0 })).toEqual([]);
    expect(formatOffset(58_438_000)).toBe('+16h13m58s');
    expect(formatOffset(3_600_000)).toBe('+1h');
    expect(formatOffset(61_000)).toBe('+1m1s');
  });
});

describe('record timestamps with the worker in another TZ, across a daylight-saving change (held before)', () => {
  const tz = process.env.TZ;
  afterEach(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });
  const parse = (timestamp: string | number) =>
    interactionSchema.parse({ id: 'a', deployment: 'd', model_version: 'v', timestamp, prompt: 'p', response: 'r' }).timestamp;

  it.each(['America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'UTC'])('TZ=%s reads a zoneless time as UTC', (zone) => {
    process.env.TZ = zone;
    // 02:30 does not exist in New York on 2025-03-09 and happens twice in Berlin on 2025-10-26.
    expect(parse('2025-03-09T02:30:00')).toBe('2025-03-09T02:30:00.000Z');
    expect(parse('2025-10-26 02:30:00')).toBe('2025-10-26T02:30:00.000Z');
    expect(parse('2025-03-09T02:30:00-05:00')).toBe('2025-03-09T07:30:00.000Z');
    expect(parse(1_741_487_400)).toBe('2025-03-09T02:30:00.000Z');
  });
});
