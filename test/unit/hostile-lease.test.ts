/** Lateness of a cycle's start and how cycles are listed (pure logic of hostile-lease.test.ts). */
import { describe, expect, it } from 'vitest';
import { describeCycle, formatCycles } from '../../client/cli/format.js';
import { durationText, emptyTotals, latenessNote, type CycleResult } from '../../domain/collector/collection.js';

const base: CycleResult = {
  ...emptyTotals(),
  cycleId: 'collect/d-2025-01-01T00:00:00.000Z',
  deployment: 'd',
  judge: 'offline',
  cursor: null,
};

describe('lateness of a cycle', () => {
  // Failed before: there was no lateness note (the functions did not exist).
  it('says how long after its scheduled time a cycle began, in words', () => {
    const due = '2025-01-01T00:00:00.000Z';
    expect(latenessNote(due, '2025-01-01T03:10:00.000Z')).toBe('started 3 h 10 min after it was due');
    expect(latenessNote(due, '2025-01-01T00:12:30.000Z')).toBe('started 12 min after it was due');
    expect(latenessNote(due, '2025-01-03T05:00:00.000Z')).toBe('started 2 d 5 h after it was due');
  });
  it('says nothing for an on-time, manual or older cycle', () => {
    expect(latenessNote('2025-01-01T00:00:00Z', '2025-01-01T00:00:20Z')).toBe('');
    expect(latenessNote(undefined, '2025-01-01T00:00:20Z')).toBe('');
    expect(latenessNote('2025-01-01T00:00:00Z', null)).toBe('');
    expect(latenessNote('2025-01-01T00:00:00Z', 'not a time')).toBe('');
  });
  it('durations', () => {
    expect(durationText(45_000)).toBe('45 s');
    expect(durationText(3_600_000)).toBe('1 h');
  });
});

describe('cycles as the CLI shows them', () => {
  // Failed before: a refused cycle was a failure ('cycle ... failed: ...', exit 3).
  it('a skipped cycle names the holder and says it is not a failure', () => {
    const r = {
      ...base,
      status: 'skipped' as const,
      heldBy: 'collect/d/manual-x',
      note: "cycle 'collect/d/manual-x' of deployment 'd' is running",
    };
    expect(describeCycle(r)).toMatch(/skipped \(not a failure; nothing collected\): cycle 'collect\/d\/manual-x'/);
  });
  it('a late cycle says so first', () => {
    const r = { ...base, scheduledAt: '2025-01-01T00:00:00.000Z', startedAt: '2025-01-01T03:10:00.000Z' };
    expect(describeCycle(r).split('\n')[0]).toContain('started 3 h 10 min after it was due');
  });
  it('lists skipped, failed and late cycles', () => {
    const row = (cycle_id: string, status: 'ok' | 'failed' | 'skipped', error: string | null, started?: string) => ({
      cycle_id,
      status,
      error,
      scheduled_at: new Date('2025-01-01T00:00:00Z'),
      started_at: started ? new Date(started) : null,
      finished_at: new Date('2025-01-01T04:00:00Z'),
      pages: 1,
      fetched: 1,
      stored: 1,
      bad: 0,
      scored: 3,
      failed: 0,
      skipped: 0,
      coverage_note: '',
    });
    const text = formatCycles('d', [
      row('c3', 'skipped', "CycleAlreadyRunning: cycle 'c2' of deployment 'd' is running"),
      row('c2', 'ok', null, '2025-01-01T03:10:00Z'),
      row('c1', 'failed', 'LeaseLost: ...', '2025-01-01T00:00:05Z'),
    ]);
    expect(text).toMatch(/c3\s+skipped.*cycle 'c2'/);
    expect(text).toMatch(/c2\s+ok\s+2025-01-01 00:00:00\s+2025-01-01 03:10:00\s+3 h 10 min/);
    expect(text).toContain('late: c2 started 3 h 10 min after it was due');
    expect(formatCycles('d', [])).toContain('no collection cycle');
  });
});
