/**
 * How the store cuts rows into INSERT blocks: by partition (UTC day or month), few enough
 * partitions per block for current servers, and, when the server refuses a block for its data,
 * by bisection down to the rows it refuses.
 */
import { ClickHouseError } from '@clickhouse/client';

/**
 * Whether the server answered with an error (as opposed to a connection problem): current
 * servers' errors parse as ClickHouseError, 18.16's keep their "Code: N, ..." text.
 */
export function isServerRefusal(e: unknown): boolean {
  return e instanceof ClickHouseError || (e instanceof Error && /^Code: \d+/.test(e.message));
}

/** Inserts one refused block may cost while its bad rows are isolated. */
const MAX_ISOLATION_INSERTS = 64;

/**
 * Most partitions one INSERT block touches. Current servers refuse a block over 100 partitions;
 * rows are grouped by their partition's UTC day or month, and one UTC day or month falls into
 * at most two of the server's time zone.
 */
export const MAX_PARTITIONS_PER_BLOCK = 45;

const isSeconds = (t: unknown): t is number => typeof t === 'number' && Number.isFinite(t);
/** UTC month of a time in seconds (`toYYYYMM` partitions), or one key for values that are not times. */
export const utcMonthKey = (t: unknown): string => {
  if (!isSeconds(t)) return 'other';
  const d = new Date(t * 1000);
  return `${d.getUTCFullYear()}-${d.getUTCMonth()}`;
};
/** UTC day of a time in seconds (`toYYYYMMDD` partitions). */
export const utcDayKey = (t: unknown): string => (isSeconds(t) ? String(Math.floor(t / 86_400)) : 'other');

/**
 * Split rows into insert blocks of at most `maxRows` rows and `maxKeys` partition keys, rows of
 * one partition together and in their order.
 */
export function partitionBlocks<T>(rows: readonly T[], key: (r: T) => string, maxRows: number, maxKeys = MAX_PARTITIONS_PER_BLOCK): T[][] {
  const groups = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  const blocks: T[][] = [];
  let block: T[] = [];
  let keys = 0;
  for (const g of groups.values()) {
    if (keys >= maxKeys) {
      blocks.push(block);
      block = [];
      keys = 0;
    }
    keys++;
    for (const r of g) {
      if (block.length >= maxRows) {
        blocks.push(block);
        block = [];
        keys = 1;
      }
      block.push(r);
    }
  }
  if (block.length) blocks.push(block);
  return blocks;
}

/**
 * Insert rows of `interactions` or `scores` through `insert`, one block per UTC month; when the
 * server refuses a block for its data, find the rows it refuses by bisection and insert the
 * others. Returns the refused rows with the server's reason. A refusal that is not about
 * particular rows (every row refused, or too many attempts) is thrown, as are connection errors.
 */
export async function insertIsolatingRefused<T>(
  table: 'interactions' | 'scores',
  rows: T[],
  insert: (table: string, values: readonly unknown[]) => Promise<void>,
): Promise<Array<{ row: T; reason: string }>> {
  const refused: Array<{ row: T; reason: string }> = [];
  let attempts = 0;
  let first: unknown;
  const go = async (part: T[]): Promise<void> => {
    if (!part.length) return;
    attempts++;
    try {
      await insert(table, part);
    } catch (e) {
      if (!isServerRefusal(e) || attempts > MAX_ISOLATION_INSERTS) throw e;
      first ??= e;
      if (part.length === 1) {
        refused.push({ row: part[0]!, reason: (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300) });
        return;
      }
      const mid = Math.ceil(part.length / 2);
      await go(part.slice(0, mid));
      await go(part.slice(mid));
    }
  };
  const ts = (r: T) => (r as { ts?: unknown; interaction_ts?: unknown })[table === 'interactions' ? 'ts' : 'interaction_ts'];
  for (const block of partitionBlocks(rows, (r) => utcMonthKey(ts(r)), Infinity)) await go(block);
  if (rows.length && refused.length === rows.length) throw first;
  return refused;
}
