/**
 * Values reach ClickHouse SQL only through these helpers (ClickHouse 18.16 has no query
 * parameters): string literals are escaped, ids are validated first.
 */
import { ID_PATTERN } from '../../../common/types.js';

export class SqlValueError extends Error {
  override name = 'SqlValueError';
}

/** Quote a string literal for ClickHouse SQL. */
export function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Quote an id after checking it against ID_PATTERN: ids never carry SQL metacharacters. */
export function sqlId(s: string, what = 'id'): string {
  if (!ID_PATTERN.test(s)) throw new SqlValueError(`${what} '${s.slice(0, 64)}' is not a valid identifier`);
  return sqlString(s);
}

export function sqlIdList(ids: readonly string[], what = 'id'): string {
  return ids.map((i) => sqlId(i, what)).join(', ');
}

/** Most values one statement names in an IN list (ClickHouse parses at most 256 KiB of SQL). */
export const VALUES_PER_STATEMENT = 1000;

/**
 * `values` as SQL lists for `IN (…)`, each of at most VALUES_PER_STATEMENT, every value written by
 * `render` (e.g. sqlString): one statement per list keeps each within what ClickHouse parses.
 */
export function sqlLists<T>(values: readonly T[], render: (v: T) => string): string[] {
  const lists: string[] = [];
  for (let i = 0; i < values.length; i += VALUES_PER_STATEMENT) {
    lists.push(
      values
        .slice(i, i + VALUES_PER_STATEMENT)
        .map((v) => render(v))
        .join(', '),
    );
  }
  return lists;
}
