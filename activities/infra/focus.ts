/**
 * Reads FinOps FOCUS 1.x cost-and-usage exports (CSV) into normalised `CostRow`s.
 *
 * - Every `*.csv` file of a directory is read, in file-name order (so monthly exports named by
 *   month come in time order). Other files are ignored.
 * - Each file's header must contain the REQUIRED_COLUMNS (exact FOCUS names; extra columns are
 *   fine). A file without one of them is not a FOCUS export this agent can use: `FocusError`
 *   naming the file and the missing columns. So does an empty directory, an unreadable file, a
 *   file without a header, and CSV so broken that parsing cannot continue (an unclosed quote).
 * - A row that cannot be used (a cost or quantity that is not a number, a charge period that is
 *   not an ISO-8601 date-time or ends before it starts, Tags that are not a JSON object, the
 *   wrong number of fields) is reported in `bad` with its position `file:line` (the line on
 *   which the record ends, 1-based, the header being line 1) and the reason. Nothing is
 *   dropped silently.
 * - Normalisation: costs are numbers (USD, as exported); an empty ConsumedQuantity (FOCUS leaves
 *   it null for non-usage charges) becomes 0; empty Tags become {}; tag values that are not
 *   strings are converted with `String`; dates become ISO strings in UTC (a date-time without an
 *   offset is read as UTC).
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse';
import type { CostRow } from '../../domain/agents/types.js';
import { calendarDateExists } from '../../common/types.js';

export const REQUIRED_COLUMNS = [
  'BilledCost',
  'EffectiveCost',
  'ChargePeriodStart',
  'ChargePeriodEnd',
  'ResourceId',
  'ResourceType',
  'ServiceName',
  'RegionId',
  'SkuId',
  'ConsumedQuantity',
  'ConsumedUnit',
  'Tags',
] as const;
type RequiredColumn = (typeof REQUIRED_COLUMNS)[number];

/** A FOCUS export that cannot be used at all (as opposed to single bad rows). */
export class FocusError extends Error {
  override readonly name = 'FocusError';
  constructor(
    message: string,
    /** The file concerned, when there is one. */
    readonly file?: string,
    /** Required columns the file lacks. */
    readonly missingColumns: readonly string[] = [],
  ) {
    super(message);
  }
}

export interface BadRow {
  /** `file:line`, file being the base name. */
  position: string;
  reason: string;
}

export interface FocusReadResult {
  rows: CostRow[];
  bad: BadRow[];
  /** The files read, in order (full paths). */
  files: string[];
}

export async function readFocusDirectory(dir: string): Promise<FocusReadResult> {
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries.filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.csv')).map((e) => e.name);
  } catch (err) {
    throw new FocusError(`cannot read FOCUS directory ${dir}: ${err instanceof Error ? err.message : String(err)}`);
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length === 0) throw new FocusError(`no FOCUS export (*.csv) in ${dir}: the directory is empty`);

  const result: FocusReadResult = { rows: [], bad: [], files: [] };
  for (const name of names) {
    const file = path.join(dir, name);
    result.files.push(file);
    await readFocusFile(file, result);
  }
  return result;
}

/** Reads one FOCUS CSV file, appending its rows and bad rows to `into`. */
export async function readFocusFile(file: string, into: Omit<FocusReadResult, 'files'>): Promise<void> {
  const base = path.basename(file);
  const parser = createReadStream(file).pipe(parse({ bom: true, info: true, relax_column_count: true, skip_empty_lines: true }));
  let header: string[] | undefined;
  let index: Record<RequiredColumn, number> | undefined;
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const { record, info } = item;
      if (!header || !index) {
        header = record.map((h) => h.trim());
        const missing = REQUIRED_COLUMNS.filter((c) => !header!.includes(c));
        if (missing.length > 0) {
          throw new FocusError(
            `${file} is not a usable FOCUS export: missing required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
            file,
            missing,
          );
        }
        index = Object.fromEntries(REQUIRED_COLUMNS.map((c) => [c, header!.indexOf(c)])) as Record<RequiredColumn, number>;
        continue;
      }
      const position = `${base}:${info.lines}`;
      if (record.length !== header.length) {
        into.bad.push({ position, reason: `${record.length} fields, the header has ${header.length}` });
        continue;
      }
      const parsed = toCostRow(record, index);
      if (typeof parsed === 'string') into.bad.push({ position, reason: parsed });
      else into.rows.push(parsed);
    }
  } catch (err) {
    parser.destroy();
    if (err instanceof FocusError) throw err;
    const line = (err as { lines?: number }).lines;
    throw new FocusError(
      `cannot parse ${file}${line ? ` near line ${line}` : ''}: ${err instanceof Error ? err.message : String(err)}`,
      file,
    );
  }
  if (!header) throw new FocusError(`${file} is empty: no header row`, file, [...REQUIRED_COLUMNS]);
}

const NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;
/** ISO-8601 date or date-time, optional fraction, optional offset (none = UTC). */
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$/;

function parseNumber(raw: string, column: string, emptyAsZero = false): number | string {
  const s = raw.trim();
  if (s === '' && emptyAsZero) return 0;
  if (!NUMBER.test(s)) return `${column} '${raw}' is not a number`;
  const n = Number(s);
  return Number.isFinite(n) ? n : `${column} '${raw}' is not a finite number`;
}

function parseDate(raw: string, column: string): string | { iso: string } {
  const s = raw.trim();
  const m = DATE_TIME.exec(s);
  if (!m) return `${column} '${raw}' is not an ISO-8601 date-time`;
  const offset = m[3] === undefined ? 'Z' : m[3] === 'Z' ? 'Z' : m[3].length === 5 ? `${m[3].slice(0, 3)}:${m[3].slice(3)}` : m[3];
  const text = `${m[1]}T${m[2] ?? '00:00'}${offset}`;
  const d = new Date(text);
  if (Number.isNaN(d.getTime()) || !calendarDateExists(text)) return `${column} '${raw}' is not a valid date-time`;
  return { iso: d.toISOString() };
}

function parseTags(raw: string): Record<string, string> | string {
  const s = raw.trim();
  if (s === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return `Tags is not valid JSON: ${s.length > 60 ? `${s.slice(0, 60)}...` : s}`;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'Tags is not a JSON object';
  const tags: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    tags[k] = typeof val === 'string' ? val : typeof val === 'object' && val !== null ? JSON.stringify(val) : String(val);
  }
  return tags;
}

/** The row, or the reason it cannot be used. */
function toCostRow(record: string[], index: Record<RequiredColumn, number>): CostRow | string {
  const get = (c: RequiredColumn) => record[index[c]] ?? '';
  const billedCost = parseNumber(get('BilledCost'), 'BilledCost');
  if (typeof billedCost === 'string') return billedCost;
  const effectiveCost = parseNumber(get('EffectiveCost'), 'EffectiveCost');
  if (typeof effectiveCost === 'string') return effectiveCost;
  const consumedQuantity = parseNumber(get('ConsumedQuantity'), 'ConsumedQuantity', true);
  if (typeof consumedQuantity === 'string') return consumedQuantity;
  const start = parseDate(get('ChargePeriodStart'), 'ChargePeriodStart');
  if (typeof start === 'string') return start;
  const end = parseDate(get('ChargePeriodEnd'), 'ChargePeriodEnd');
  if (typeof end === 'string') return end;
  if (end.iso < start.iso) return `ChargePeriodEnd ${end.iso} is before ChargePeriodStart ${start.iso}`;
  const tags = parseTags(get('Tags'));
  if (typeof tags === 'string') return tags;
  return {
    chargePeriodStart: start.iso,
    chargePeriodEnd: end.iso,
    billedCost,
    effectiveCost,
    resourceId: get('ResourceId').trim(),
    resourceType: get('ResourceType').trim(),
    serviceName: get('ServiceName').trim(),
    regionId: get('RegionId').trim(),
    skuId: get('SkuId').trim(),
    consumedQuantity,
    consumedUnit: get('ConsumedUnit').trim(),
    tags,
  };
}
