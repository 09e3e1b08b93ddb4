/**
 * Reads FinOps FOCUS 1.x cost-and-usage exports (CSV) into normalised `CostRow`s.
 *
 * - `streamFocusDirectory` (what collection uses) hands rows on in batches while it parses, counts
 *   bad rows and keeps the first MAX_BAD_SAMPLES: its memory is one batch, whatever the size of
 *   the export (a month of a large bill is millions of rows and hundreds of MB).
 *   `readFocusDirectory` returns everything at once, for small exports.
 * - Every `*.csv` file of a directory is read, in file-name order (so monthly exports named by
 *   month come in time order). Other files are ignored.
 * - Each file's header must contain the REQUIRED_COLUMNS (exact FOCUS names; extra columns are
 *   fine). A file without one of them is not a FOCUS export this agent can use: `FocusError`
 *   naming the file and the missing columns. So does an empty directory, an unreadable file, a
 *   file without a header, a header naming a required column twice, a compressed file (gzip,
 *   zip), and CSV so broken that parsing cannot continue (an unclosed quote, a record longer than
 *   MAX_RECORD_CHARS). Symbolic links to regular files are read; FIFOs and devices are not.
 * - A row that cannot be used (a cost or quantity that is not a number or beyond ±MAX_ABS_AMOUNT,
 *   a charge period that is not an ISO-8601 date-time, ends before it starts, starts before 2000
 *   or ends more than a year ahead, a BillingCurrency other than USD, Tags that are not a JSON
 *   object or nest too deeply, the wrong number of fields) is reported in `bad` with its
 *   position `file:line` (the line on
 *   which the record ends, 1-based, the header being line 1) and the reason. Nothing is
 *   dropped silently.
 * - Normalisation: costs are numbers (USD, as exported); an empty ConsumedQuantity (FOCUS leaves
 *   it null for non-usage charges) becomes 0; empty Tags become {}; tag values that are not
 *   strings are converted with `String`; dates become ISO strings in UTC (a date-time without an
 *   offset is read as UTC); control characters (NUL included) and lone surrogates in texts and
 *   tags become U+FFFD, since PostgreSQL refuses NUL when findings are stored.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse';
import type { CostRow } from '../../domain/agents/types.js';
import { calendarDateExists } from '../../common/types.js';
import { printable } from '../../domain/collector/record.js';

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

/** Where the reader puts what it reads: rows in batches, bad rows one by one. */
export interface FocusSink {
  /** Called with each batch of at most `batchRows` rows, awaited before reading on (back-pressure). */
  rows(batch: CostRow[]): void | Promise<void>;
  bad(row: BadRow): void;
}

/** The `*.csv` files of a FOCUS directory, in name order (full paths). */
export async function focusFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  const compressed: string[] = [];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const lower = e.name.toLowerCase();
      if (/\.csv\.(gz|gzip|zip|bz2|zst|xz)$/.test(lower)) compressed.push(e.name);
      if (!lower.endsWith('.csv')) continue;
      // A symbolic link (as in a Kubernetes ConfigMap volume) counts when it leads to a regular file.
      if (e.isFile() || (e.isSymbolicLink() && (await stat(path.join(dir, e.name)).catch(() => undefined))?.isFile())) names.push(e.name);
    }
  } catch (err) {
    throw new FocusError(`cannot read FOCUS directory ${dir}: ${err instanceof Error ? err.message : String(err)}`);
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length === 0) {
    throw new FocusError(
      compressed.length > 0
        ? `no FOCUS export (*.csv) in ${dir}: ${compressed.length} compressed file${compressed.length > 1 ? 's' : ''} (${compressed.slice(0, 3).join(', ')}) must be decompressed first`
        : `no FOCUS export (*.csv) in ${dir}: the directory is empty`,
    );
  }
  return names.map((n) => path.join(dir, n));
}

/**
 * What identifies the content of a FOCUS directory without reading it: the directory, and each
 * `*.csv` file's name, size, modification time and inode, hashed. A provider that re-issues an
 * export rewrites or replaces its files, which changes them; an export left as it was keeps it.
 */
export async function focusFingerprint(dir: string): Promise<string> {
  const h = createHash('sha256').update(path.resolve(dir));
  for (const file of await focusFiles(dir)) {
    const s = await stat(file).catch((err: unknown) => {
      throw new FocusError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, file);
    });
    h.update(`\0${path.basename(file)}\0${s.size}\0${s.mtimeMs}\0${s.ino}`);
  }
  return h.digest('hex').slice(0, 32);
}

/** Reads a whole FOCUS directory into memory: for small exports and tests. Collection streams (`streamFocusDirectory`). */
export async function readFocusDirectory(dir: string): Promise<FocusReadResult> {
  const result: FocusReadResult = { rows: [], bad: [], files: await focusFiles(dir) };
  for (const file of result.files) await readFocusFile(file, result);
  return result;
}

/** Rows handed to `onBatch` at a time by `streamFocusDirectory` (default). */
export const FOCUS_BATCH_ROWS = 10_000;
/** Bad rows `streamFocusDirectory` keeps as samples (all are counted). */
export const MAX_BAD_SAMPLES = 100;

export interface FocusStreamResult {
  files: string[];
  rows: number;
  /** Every bad row is counted; the first MAX_BAD_SAMPLES are kept with their position and reason. */
  badCount: number;
  bad: BadRow[];
}

/**
 * Reads a FOCUS directory without holding it: rows go to `onBatch` in batches of `batchRows` as
 * they are parsed (each awaited, so a slow store slows the reading rather than filling memory),
 * bad rows are counted and the first `maxBad` kept. Memory is bounded by one batch, whatever the
 * size of the export. `onProgress` hears of every batch (to heartbeat).
 */
export async function streamFocusDirectory(
  dir: string,
  onBatch: (rows: CostRow[]) => void | Promise<void>,
  opts: { batchRows?: number; maxBad?: number; onProgress?: (p: { file: string; rows: number; bad: number }) => void } = {},
): Promise<FocusStreamResult> {
  const batchRows = opts.batchRows ?? FOCUS_BATCH_ROWS;
  const maxBad = opts.maxBad ?? MAX_BAD_SAMPLES;
  const out: FocusStreamResult = { files: await focusFiles(dir), rows: 0, badCount: 0, bad: [] };
  let batch: CostRow[] = [];
  let current = '';
  const flush = async () => {
    if (!batch.length) return;
    const b = batch;
    batch = [];
    out.rows += b.length;
    await onBatch(b);
    opts.onProgress?.({ file: current, rows: out.rows, bad: out.badCount });
  };
  const sink: FocusSink = {
    rows: async (rows) => {
      for (const r of rows) batch.push(r);
      if (batch.length >= batchRows) await flush();
    },
    bad: (b) => {
      out.badCount++;
      if (out.bad.length < maxBad) out.bad.push(b);
    },
  };
  for (const file of out.files) {
    current = file;
    await readFocusFile(file, sink);
  }
  await flush();
  return out;
}

/** Reads one FOCUS CSV file, appending its rows and bad rows to `into` (arrays, or a streaming sink). */
export async function readFocusFile(file: string, into: Omit<FocusReadResult, 'files'> | FocusSink): Promise<void> {
  const sink: FocusSink = Array.isArray(into.rows)
    ? {
        rows: (batch) => {
          for (const r of batch) (into as FocusReadResult).rows.push(r);
        },
        bad: (b) => (into as FocusReadResult).bad.push(b),
      }
    : (into as FocusSink);
  const base = path.basename(file);
  const magic = await leadingBytes(file, 4);
  if ((magic[0] === 0x1f && magic[1] === 0x8b) || (magic[0] === 0x50 && magic[1] === 0x4b && magic[2] === 0x03 && magic[3] === 0x04)) {
    throw new FocusError(`${file} is ${magic[0] === 0x1f ? 'gzip' : 'zip'}-compressed, not CSV: decompress it first`, file);
  }
  const parser = createReadStream(file).pipe(
    parse({ bom: true, info: true, relax_column_count: true, skip_empty_lines: true, max_record_size: MAX_RECORD_CHARS }),
  );
  let header: string[] | undefined;
  let index: Record<RequiredColumn, number> | undefined;
  let currencyIndex: number | undefined;
  let pending: CostRow[] = [];
  let quotedCrlf = 0;
  // A failure of the sink (the store) is its own, not a parse error of the file.
  let sinkFailure: { error: unknown } | undefined;
  const deliver = async (rows: CostRow[]) => {
    try {
      await sink.rows(rows);
    } catch (error) {
      sinkFailure = { error };
      throw error;
    }
  };
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const { record, info } = item;
      // The parser counts a CRLF inside a quoted field as two lines: count it as one.
      for (const f of record) if (f.includes('\r\n')) quotedCrlf += f.split('\r\n').length - 1;
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
        const duplicated = REQUIRED_COLUMNS.filter((c) => header!.indexOf(c) !== header!.lastIndexOf(c));
        if (duplicated.length > 0) {
          throw new FocusError(
            `${file} is not a usable FOCUS export: column${duplicated.length > 1 ? 's' : ''} ${duplicated.join(', ')} appear${duplicated.length > 1 ? '' : 's'} more than once in the header`,
            file,
          );
        }
        const currency = header.indexOf('BillingCurrency');
        currencyIndex = currency >= 0 ? currency : undefined;
        index = Object.fromEntries(REQUIRED_COLUMNS.map((c) => [c, header!.indexOf(c)])) as Record<RequiredColumn, number>;
        continue;
      }
      const position = `${base}:${info.lines - quotedCrlf}`;
      if (record.length !== header.length) {
        sink.bad({ position, reason: `${record.length} fields, the header has ${header.length}` });
        continue;
      }
      const currency = currencyIndex === undefined ? '' : (record[currencyIndex] ?? '').trim();
      if (currency !== '' && currency.toUpperCase() !== 'USD') {
        sink.bad({ position, reason: `BillingCurrency '${snippetOf(currency)}' is not USD (costs are read as USD)` });
        continue;
      }
      const parsed = toCostRow(record, index);
      if (typeof parsed === 'string') sink.bad({ position, reason: parsed });
      else {
        pending.push(parsed);
        if (pending.length >= 1000) {
          await deliver(pending);
          pending = [];
        }
      }
    }
    if (pending.length) await deliver(pending);
  } catch (err) {
    parser.destroy();
    if (sinkFailure && sinkFailure.error === err) throw err;
    if (err instanceof FocusError) throw err;
    const line = (err as { lines?: number }).lines;
    const code = (err as { code?: string }).code;
    const reason =
      code === 'CSV_MAX_RECORD_SIZE'
        ? `a record is longer than ${MAX_RECORD_CHARS} characters (an unclosed quote, or not a FOCUS export)`
        : snippetOf(printable(err instanceof Error ? err.message : String(err)), 300);
    throw new FocusError(`cannot parse ${file}${line ? ` near line ${line - quotedCrlf}` : ''}: ${reason}`, file);
  }
  if (!header) throw new FocusError(`${file} is empty: no header row`, file, [...REQUIRED_COLUMNS]);
}

/** Longest CSV record read, in characters: bounds the memory a broken file (an unclosed quote) can take. */
export const MAX_RECORD_CHARS = 4 * 1024 * 1024;
/** Largest absolute cost or quantity of one row: beyond it, a value is a broken export, and sums would overflow. */
export const MAX_ABS_AMOUNT = 1e12;
/** Charge periods must start after this (epoch ms, 2000-01-01) and end at most a year ahead of now. */
const EARLIEST_CHARGE_MS = Date.UTC(2000, 0, 1);
const LATEST_AHEAD_MS = 366 * 86_400_000;

const snippetOf = (s: string, n = 60) => (s.length > n ? `${s.slice(0, n)}...` : s);

async function leadingBytes(file: string, n: number): Promise<Buffer> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(file, 'r');
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } catch (err) {
    throw new FocusError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, file);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

const NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;
/** ISO-8601 date or date-time, optional fraction, optional offset (none = UTC). */
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$/;

function parseNumber(raw: string, column: string, emptyAsZero = false): number | string {
  const s = raw.trim();
  if (s === '' && emptyAsZero) return 0;
  if (!NUMBER.test(s)) return `${column} '${snippetOf(raw)}' is not a number`;
  const n = Number(s);
  if (!Number.isFinite(n)) return `${column} '${snippetOf(raw)}' is not a finite number`;
  if (Math.abs(n) > MAX_ABS_AMOUNT) return `${column} ${s} is beyond ±${MAX_ABS_AMOUNT}: not a plausible amount for one row`;
  return n;
}

function parseDate(raw: string, column: string): string | { iso: string } {
  const s = raw.trim();
  const m = DATE_TIME.exec(s);
  if (!m) return `${column} '${snippetOf(raw)}' is not an ISO-8601 date-time`;
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
    let text: string;
    try {
      text = typeof val === 'string' ? val : typeof val === 'object' && val !== null ? JSON.stringify(val) : String(val);
    } catch {
      return `Tags value of '${snippetOf(printable(k))}' is nested too deeply`;
    }
    tags[printable(k)] = printable(text);
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
  if (Date.parse(start.iso) < EARLIEST_CHARGE_MS) return `ChargePeriodStart ${start.iso} is before 2000-01-01`;
  if (Date.parse(end.iso) > Date.now() + LATEST_AHEAD_MS) return `ChargePeriodEnd ${end.iso} is more than a year in the future`;
  const tags = parseTags(get('Tags'));
  if (typeof tags === 'string') return tags;
  return {
    chargePeriodStart: start.iso,
    chargePeriodEnd: end.iso,
    billedCost,
    effectiveCost,
    resourceId: printable(get('ResourceId').trim()),
    resourceType: printable(get('ResourceType').trim()),
    serviceName: printable(get('ServiceName').trim()),
    regionId: printable(get('RegionId').trim()),
    skuId: printable(get('SkuId').trim()),
    consumedQuantity,
    consumedUnit: printable(get('ConsumedUnit').trim()),
    tags,
  };
}
