/**
 * Fetching one page of a deployment's interactions and storing it. Whatever a source sends, the
 * page goes through: a record that cannot be parsed, stored or sampled is a counted bad record
 * with a sanitised sample (never an error of the page), a block ClickHouse refuses is bisected
 * so the good records are stored and the refused ones quarantined with the server's reason, and
 * an id seen before with other content is a counted conflict (the first copy is kept).
 */
import { createHash } from 'node:crypto';
import { log } from '@temporalio/activity';
import { raise } from '../../common/failures.js';
import type { BadSample } from '../../domain/collector/collection.js';
import { printable, type Interaction } from '../../domain/collector/record.js';
import { unixSeconds, type InteractionRow } from '../storage/clickhouse/rows.js';
import type { ClickHouseStore } from '../storage/clickhouse/store.js';
import type { Db } from '../storage/postgres/db.js';
import * as deployments from '../storage/postgres/deployments.js';
import { SourceError, type BadRecord } from './source-contract.js';
import { createSource, sourceConfigSchema } from './sources.js';

export interface FetchPageResult {
  fromCursor: string | null;
  nextCursor: string;
  hasMore: boolean;
  /** Items read from the source (valid or not). */
  fetched: number;
  /** Interactions stored by this page (new ones). */
  stored: number;
  /** Interactions of this page stored before with the same content (a re-read page): not stored again. */
  alreadyStored?: number;
  /** Records whose id was stored before with other content: counted, not stored (first copy kept). */
  conflicts?: number;
  bad: number;
  badSamples: BadSample[];
  /** Ids chosen for scoring by deterministic sampling. */
  ids: string[];
  versions: string[];
}

/** Deterministic sampling (a hash of the id against the rate): the same interaction is always in or out. */
export function sampled(id: string, rate: number): boolean {
  if (rate >= 1) return true;
  const h = createHash('sha256').update(id).digest().readUInt32BE(0);
  return h / 0x1_0000_0000 < rate;
}

const SAMPLE_LIMIT = 20;

const sameContent = (a: InteractionRow, r: Interaction) =>
  a.model_version === r.model_version &&
  a.prompt === r.prompt &&
  a.response === r.response &&
  (a.has_context ? a.context : undefined) === r.context;

export interface FetchDeps {
  ch: ClickHouseStore;
  db: Db;
  clean: (s: string) => string;
  window: () => { oldest: number; newest: number };
}

export async function fetchPage(deps: FetchDeps, input: { deployment: string; cycleId: string; limit: number }): Promise<FetchPageResult> {
  const { ch, db, clean } = deps;
  const dep = await deployments.registeredDeployment(db, input.deployment);
  const parsed = sourceConfigSchema.safeParse(dep.source);
  if (!parsed.success)
    raise('InvalidSourceConfig', `deployment '${input.deployment}' has an invalid source configuration: ${parsed.error.message}`);
  const cursor = await deployments.getCursor(db, input.deployment);
  let page: Awaited<ReturnType<ReturnType<typeof createSource>['fetch']>>;
  try {
    page = await createSource(parsed.data, input.deployment, { window: deps.window() }).fetch(cursor, input.limit);
  } catch (e) {
    if (e instanceof SourceError) raise('SourceUnavailable', clean(e.message));
    throw e;
  }
  const bad: BadRecord[] = [...page.bad];

  // An id stored before: the same content (this page read again) is not stored twice; other
  // content is a conflict and the first copy stays.
  const before = new Map(
    (
      await ch.interactionsByIds(
        input.deployment,
        page.records.map((r) => r.id),
      )
    ).map((r) => [r.id, r]),
  );
  let alreadyStored = 0;
  let conflicts = 0;
  const fresh: Interaction[] = [];
  const kept: Interaction[] = [];
  for (const r of page.records) {
    const prior = before.get(r.id);
    if (!prior) fresh.push(r);
    else if (sameContent(prior, r)) {
      alreadyStored++;
      kept.push(r);
    } else {
      conflicts++;
      bad.push({
        position: `id ${r.id}`,
        id: r.id,
        reason: `conflict: id stored before (model_version ${prior.model_version}, cycle ${prior.cycle_id}) with other content; the first copy is kept`,
      });
    }
  }

  const ver = Date.now();
  const rows: InteractionRow[] = fresh.map((r) => ({
    deployment: r.deployment,
    id: r.id,
    model_version: r.model_version,
    ts: unixSeconds(r.timestamp),
    prompt: r.prompt,
    response: r.response,
    context: r.context ?? '',
    has_context: r.context === undefined ? 0 : 1,
    metadata: JSON.stringify(r.metadata ?? {}),
    source: parsed.data.type,
    cycle_id: input.cycleId,
    ver,
  }));
  const refused = new Set<string>();
  for (const { row, reason } of await ch.insertIsolatingBad('interactions', rows)) {
    refused.add(row.id);
    bad.push({ position: `id ${row.id}`, id: row.id, reason: `quarantined: ClickHouse refused the record: ${reason}` });
  }
  const stored = [...fresh.filter((r) => !refused.has(r.id)), ...kept];
  // page.bad holds one entry for the items a source sent beyond the page size: count those items.
  const ignored = page.ignored ?? 0;
  const refusedBySource = page.bad.length - (ignored ? 1 : 0);
  const badCount = refusedBySource + ignored + refused.size;
  if (badCount + conflicts) log.warn('bad records skipped', { deployment: input.deployment, bad: badCount, conflicts });
  return {
    fromCursor: cursor,
    nextCursor: page.nextCursor,
    hasMore: page.hasMore,
    fetched: page.records.length + refusedBySource + ignored,
    stored: rows.length - refused.size,
    alreadyStored,
    conflicts,
    bad: badCount,
    // Samples are stored as JSON in PostgreSQL and shown in terminals: printable text only.
    badSamples: bad.slice(0, SAMPLE_LIMIT).map((b) => ({
      position: printable(b.position),
      reason: printable(clean(b.reason)),
      ...(b.id === undefined ? {} : { id: printable(b.id) }),
    })),
    ids: stored.filter((r) => sampled(r.id, dep.sample_rate)).map((r) => r.id),
    versions: [...new Set(stored.map((r) => r.model_version))],
  };
}
