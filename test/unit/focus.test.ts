import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FocusError, readFocusDirectory, REQUIRED_COLUMNS } from '../../activities/infra/focus.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/focus', import.meta.url));

const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'focus-test-'));
  tmpDirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function focusErrorOf(dir: string): Promise<FocusError> {
  try {
    await readFocusDirectory(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(FocusError);
    return err as FocusError;
  }
  throw new Error(`expected a FocusError reading ${dir}`);
}

describe('readFocusDirectory', () => {
  it('reads every *.csv in name order, normalises good rows and ignores other files', async () => {
    const dir = path.join(FIXTURES, 'valid');
    const { rows, files } = await readFocusDirectory(dir);
    expect(files).toEqual([path.join(dir, '2025-06-a.csv'), path.join(dir, '2025-06-b.csv')]);
    expect(rows).toHaveLength(5);

    // Columns are found by name (the fixture's order differs from the FOCUS spec's; extra columns are ignored).
    expect(rows[0]).toEqual({
      chargePeriodStart: '2025-06-01T00:00:00.000Z',
      chargePeriodEnd: '2025-06-02T00:00:00.000Z',
      billedCost: 88.08,
      effectiveCost: 88.08,
      resourceId: 'gpu-1',
      resourceType: 'Virtual Machine',
      serviceName: 'Virtual Machines',
      regionId: 'us-east-1',
      skuId: 'VM-GPU.1XA100-80G',
      consumedQuantity: 24,
      consumedUnit: 'Hours',
      tags: { deployment: 'chat-prod', instance_type: 'gpu.1xa100-80g' },
    });
    expect(rows[1]!.effectiveCost).toBe(80.5);
    expect(rows[1]!.billedCost).toBe(88.08);

    // A date-time without an offset is UTC; an empty ConsumedQuantity is 0; empty Tags are {}.
    expect(rows[2]).toMatchObject({ chargePeriodStart: '2025-06-01T00:00:00.000Z', consumedQuantity: 0, tags: {} });

    // Second file (UTF-8 BOM, CRLF): offsets are converted to UTC.
    expect(rows[3]).toMatchObject({
      resourceId: 'i-report',
      chargePeriodStart: '2025-06-02T22:00:00.000Z',
      chargePeriodEnd: '2025-06-02T23:00:00.000Z',
      billedCost: 0.0712,
      tags: { instance_type: 'gen.large' },
    });
    // Quoted Tags with a comma inside; a non-string tag value becomes a string.
    expect(rows[4]!.tags).toEqual({ team: 'ml, platform', cost_center: '42' });
  });

  it('counts every bad row with its file:line position and reason', async () => {
    const { bad } = await readFocusDirectory(path.join(FIXTURES, 'valid'));
    expect(bad.map((b) => b.position)).toEqual([
      '2025-06-b.csv:3',
      '2025-06-b.csv:4',
      '2025-06-b.csv:5',
      '2025-06-b.csv:7',
      '2025-06-b.csv:8',
      '2025-06-b.csv:9',
    ]);
    expect(bad[0]!.reason).toBe("BilledCost 'abc' is not a number");
    expect(bad[1]!.reason).toMatch(/ChargePeriodStart 'yesterday' is not an ISO-8601 date-time/);
    expect(bad[2]!.reason).toMatch(/^Tags is not valid JSON/);
    expect(bad[3]!.reason).toBe('7 fields, the header has 13');
    expect(bad[4]!.reason).toBe('Tags is not a JSON object');
    expect(bad[5]!.reason).toMatch(/ChargePeriodEnd .* is before ChargePeriodStart/);
  });

  it('a file missing a required column is a FocusError naming the file and the column', async () => {
    const err = await focusErrorOf(path.join(FIXTURES, 'missing-column'));
    expect(err.message).toContain('export.csv');
    expect(err.message).toContain('missing required column ConsumedUnit');
    expect(err.missingColumns).toEqual(['ConsumedUnit']);
    expect(err.file).toBe(path.join(FIXTURES, 'missing-column', 'export.csv'));
  });

  it('names every missing column', async () => {
    const dir = tmpDir();
    writeFileSync(path.join(dir, 'x.csv'), 'BilledCost,ChargePeriodStart\n1,2025-06-01T00:00:00Z\n');
    const err = await focusErrorOf(dir);
    expect(err.missingColumns).toEqual(REQUIRED_COLUMNS.filter((c) => c !== 'BilledCost' && c !== 'ChargePeriodStart'));
    expect(err.message).toContain('missing required columns EffectiveCost, ChargePeriodEnd, ResourceId');
  });

  it('an empty directory, a directory without CSV files and a missing directory are FocusErrors', async () => {
    const empty = tmpDir();
    expect((await focusErrorOf(empty)).message).toMatch(/no FOCUS export \(\*\.csv\) in .*: the directory is empty/);
    const noCsv = tmpDir();
    writeFileSync(path.join(noCsv, 'readme.txt'), 'hello');
    expect((await focusErrorOf(noCsv)).message).toContain('the directory is empty');
    expect((await focusErrorOf(path.join(empty, 'nope'))).message).toMatch(/cannot read FOCUS directory/);
  });

  it('an empty file and unparseable CSV are FocusErrors naming the file', async () => {
    const dir = tmpDir();
    writeFileSync(path.join(dir, 'empty.csv'), '');
    const err = await focusErrorOf(dir);
    expect(err.message).toContain('empty.csv is empty: no header row');

    const broken = await focusErrorOf(path.join(FIXTURES, 'broken-quote'));
    expect(broken.message).toMatch(/cannot parse .*export\.csv near line 2/);
  });

  it('a header-only file gives no rows and no bad rows', async () => {
    const dir = tmpDir();
    writeFileSync(path.join(dir, 'h.csv'), `${REQUIRED_COLUMNS.join(',')}\n`);
    const r = await readFocusDirectory(dir);
    expect(r).toEqual({ rows: [], bad: [], files: [path.join(dir, 'h.csv')] });
  });
});
