/**
 * The backfill's reads of ClickHouse: the ids of a deployment's stored interactions in a time
 * window, a page at a time in id order (a keyset cursor: the sorting key is (deployment, id), so
 * a page starts where the last one ended without an OFFSET), and how much of the window a judge's
 * scores cover. SQL for 18.16 and current releases; values only through `sqlId` / `sqlString`
 * and integers.
 */
import type { Check } from '../../../common/types.js';
import { windowSeconds } from '../../../domain/collector/backfill.js';
import type { ClickHouseReader } from './score-queries.js';
import { checkFilter } from './score-queries.js';
import { SqlValueError, sqlId, sqlString } from './sql.js';

export interface InteractionWindow {
  deployment: string;
  modelVersion?: string;
  /** ISO instants: [from, to) on the interactions' `ts`. */
  from: string;
  to: string;
}

function seconds(n: number, what: string): string {
  if (!Number.isSafeInteger(n) || n < 0 || n > 4_294_967_295)
    throw new SqlValueError(`${what} ${String(n).slice(0, 32)} is not a DateTime`);
  return String(n);
}

/** The WHERE clause of the window's interactions. */
function windowFilter(w: InteractionWindow): string {
  const { fromSec, toSec } = windowSeconds(w.from, w.to);
  return [
    `deployment = ${sqlId(w.deployment, 'deployment')}`,
    `ts >= toDateTime(${seconds(Math.max(0, fromSec), 'from')})`,
    `ts < toDateTime(${seconds(Math.max(0, Math.min(toSec, 4_294_967_295)), 'to')})`,
    ...(w.modelVersion === undefined ? [] : [`model_version = ${sqlId(w.modelVersion, 'model version')}`]),
  ].join(' AND ');
}

/**
 * Up to `limit` ids of the window after `after` (all of them from the first when null), in id
 * order, with the cycle that stored each. Each id once: an interaction stored twice (a page
 * re-delivered while another insert of it was in flight) is one id (`LIMIT 1 BY id`, as
 * `interactionsByIds` reads one copy).
 */
export async function interactionIdPage(
  reader: ClickHouseReader,
  w: InteractionWindow,
  after: string | null,
  limit: number,
): Promise<Array<{ id: string; cycle_id: string }>> {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new SqlValueError(`page size ${String(limit).slice(0, 32)} is not a positive integer`);
  }
  return reader.query<{ id: string; cycle_id: string }>(
    `SELECT id, cycle_id FROM ${reader.db}.interactions
     WHERE ${windowFilter(w)}${after === null ? '' : ` AND id > ${sqlString(after)}`}
     ORDER BY id LIMIT 1 BY id LIMIT ${limit}`,
  );
}

/**
 * The window's interactions (each id once) and how many of them have every one of `checks`
 * stored by this judge with these prompt versions, scored or abstained (a failed check is not
 * coverage).
 */
export async function windowCoverage(
  reader: ClickHouseReader,
  w: InteractionWindow,
  q: { judge: string; promptVersions: Record<Check, string>; checks: readonly Check[] },
): Promise<{ interactions: number; scored: number }> {
  const checks = [...new Set(q.checks)];
  if (!checks.length) throw new SqlValueError('no checks to measure coverage of');
  const versions = Object.fromEntries(checks.map((c) => [c, q.promptVersions[c]])) as Record<Check, string>;
  const inWindow = `SELECT id FROM ${reader.db}.interactions WHERE ${windowFilter(w)}`;
  const [all] = await reader.query<{ n: string }>(`SELECT uniqExact(id) AS n FROM ${reader.db}.interactions WHERE ${windowFilter(w)}`);
  const [scored] = await reader.query<{ n: string }>(
    `SELECT count() AS n FROM (
       SELECT interaction_id FROM ${reader.db}.scores
       WHERE deployment = ${sqlId(w.deployment, 'deployment')} AND judge = ${sqlString(q.judge)}
         AND (${checkFilter(versions)}) AND status != 'failed'
         AND interaction_id IN (${inWindow})
       GROUP BY interaction_id
       HAVING uniqExact(check_name) = ${checks.length})`,
  );
  return { interactions: Number(all?.n ?? 0), scored: Number(scored?.n ?? 0) };
}
