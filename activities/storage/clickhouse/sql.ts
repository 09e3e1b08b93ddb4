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
