/**
 * `optiinfra infra add | list | remove | collect`: the infrastructure data the agents read (FOCUS
 * cost exports, Prometheus / vLLM / DCGM metrics). `list` shows each registered source as the
 * collection reads it (a stored configuration that no longer parses is listed with the reason, as
 * a collection reports it); `remove` unregisters one source and deletes the cost rows it read
 * (metric samples stay: the agents read only those of registered sources).
 */
import type { Command } from 'commander';
import { infraSourceSchema, type InfraKind } from '../../activities/infra/activities.js';
import type { Db } from '../../activities/storage/postgres/db.js';
import {
  deleteInfraSource,
  type InfraSourceRow,
  listInfraSourcePage,
  upsertInfraSource,
} from '../../activities/storage/postgres/agents.js';
import { redact, safeUrl, secretsOf } from '../../common/secrets.js';
import { formatZodError } from '../../common/types.js';
import { addOutcome, collectionLine, emptyCollection, type InfraCollection, type SourceOutcome } from '../../domain/infra/collection.js';
import { ensureInfraSchedule, INFRA_SCHEDULE_ID } from '../schedules.js';
import { scheduleOutcomeLine } from './schedules.js';
import { durationArg, idArg, UsageError } from './args.js';
import { withClient, withStores } from './connect.js';
import { printJson, table, terminalText } from './format.js';
import { warnIfNoWorker } from '../runtime.js';

/** Sources one read of a listing returns at most. */
export const LIST_PAGE = 1_000;

/** A registered source as `infra list` shows it. */
export interface ListedInfraSource {
  id: string;
  /** 'unknown' when the stored configuration no longer parses (see `error`). */
  kind: InfraKind | 'unknown';
  /** A FOCUS directory. */
  path?: string;
  /** A metrics URL, without user, password or secret-looking query values. */
  url?: string;
  resourceId?: string;
  instanceType?: string;
  /** How far the last collection reached (scrape and Prometheus sources; a FOCUS directory is read whole each time). */
  lastCollectedTo: string | null;
  /** Why the stored configuration no longer parses. */
  error?: string;
}

/** A URL as listed: `safeUrl`, or a marker when it does not parse (the fallback would keep a query's secrets). */
const shownUrl = (u: string) => (URL.canParse(u) ? safeUrl(u) : '(unparseable URL)');

/**
 * A stored source as listed. One whose configuration no longer parses (edited by hand, written by
 * another version) is kind 'unknown' with the reason, and where it read when that can still be told.
 */
export function listedInfraSource(row: InfraSourceRow, secrets: string[] = []): ListedInfraSource {
  const lastCollectedTo = row.lastCollectedTo ?? null;
  const parsed = infraSourceSchema.safeParse(row.config);
  if (parsed.success) {
    const c = parsed.data;
    if (c.kind === 'focus') return { id: row.id, kind: c.kind, path: c.path, lastCollectedTo };
    return { id: row.id, kind: c.kind, url: shownUrl(c.url), resourceId: c.resourceId, instanceType: c.instanceType, lastCollectedTo };
  }
  const raw = (row.config !== null && typeof row.config === 'object' ? row.config : {}) as { path?: unknown; url?: unknown };
  return {
    id: row.id,
    kind: 'unknown',
    ...(typeof raw.path === 'string' ? { path: raw.path } : {}),
    ...(typeof raw.url === 'string' ? { url: shownUrl(raw.url) } : {}),
    lastCollectedTo,
    error: redact(`its stored configuration is invalid (${formatZodError(parsed.error)})`, secrets),
  };
}

/** Every registered source in id order, read `pageSize` at a time. */
export async function listedInfraSources(db: Db, secrets: string[] = [], pageSize = LIST_PAGE): Promise<ListedInfraSource[]> {
  const out: ListedInfraSource[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await listInfraSourcePage(db, after, pageSize);
    for (const row of page) out.push(listedInfraSource(row, secrets));
    if (page.length < pageSize) return out;
    after = page.at(-1)!.id;
  }
}

/** The listing as a table, with a line per source whose configuration no longer parses. */
export function formatInfraSources(sources: ListedInfraSource[]): string {
  if (!sources.length) {
    return "no infrastructure source is registered: add one with 'optiinfra infra add <id> --focus DIR' (or --scrape URL, --prometheus URL)";
  }
  const when = (iso: string | null) => (iso ? iso.slice(0, 19).replace('T', ' ') : undefined);
  const broken = sources.filter((s) => s.error);
  return [
    table(
      sources.map((s) => ({
        source: s.id,
        kind: s.kind,
        reads: s.path ?? s.url,
        resource_id: s.resourceId,
        instance_type: s.instanceType,
        collected_to: when(s.lastCollectedTo),
      })),
    ),
    `${sources.length.toLocaleString('en-US')} source(s); collected_to: how far the last collection reached (UTC; none for FOCUS directories, read whole each time)`,
    ...broken.map(
      (s) =>
        `${terminalText(s.id)}: ${terminalText(s.error!)}: register it again with 'optiinfra infra add ${terminalText(s.id)} …' or remove it with 'optiinfra infra remove ${terminalText(s.id)}'`,
    ),
  ].join('\n');
}

/** What stays after a source is removed: its collected data, and who still reads it. */
export function removedLine(id: string, kind: ListedInfraSource['kind']): string {
  const shown = terminalText(id);
  const stays =
    kind === 'focus'
      ? 'the cost rows it read are deleted from ClickHouse (a FOCUS export is read whole again when a source is added)'
      : kind === 'unknown'
        ? 'its cost rows, if any, are deleted from ClickHouse; metric samples stay'
        : 'the metric samples it collected stay in ClickHouse; the agents read only those of registered sources, so they count again if it is registered again';
  return `infrastructure source ${shown} removed (${kind}); ${stays}`;
}

export function registerInfraCommands(program: Command): void {
  const infra = program
    .command('infra')
    .description('infrastructure data the agents read: FOCUS cost exports, Prometheus / vLLM / DCGM metrics');
  infra
    .command('add')
    .description('register (or update) a source')
    .argument('<id>', 'source id (for metrics: the deployment or host it describes)', idArg('source id'))
    .option('--focus <dir>', 'a directory of FinOps FOCUS cost-and-usage CSV exports')
    .option('--scrape <url>', 'a /metrics endpoint (vLLM, DCGM exporter, node exporter) scraped directly')
    .option('--prometheus <url>', 'a Prometheus server, read with query_range')
    .option('--resource-id <id>', "the host's ResourceId in the cost data (metrics sources)")
    .option('--instance-type <name>', "the host's instance type (metrics sources)")
    .action(async (id: string, o: { focus?: string; scrape?: string; prometheus?: string; resourceId?: string; instanceType?: string }) => {
      const given = [o.focus, o.scrape, o.prometheus].filter(Boolean).length;
      if (given !== 1) throw new UsageError('give exactly one of --focus, --scrape or --prometheus');
      const candidate = o.focus
        ? { kind: 'focus', path: o.focus }
        : {
            kind: o.scrape ? 'scrape' : 'prometheus',
            url: o.scrape ?? o.prometheus,
            resourceId: o.resourceId,
            instanceType: o.instanceType,
          };
      const parsed = infraSourceSchema.safeParse(candidate);
      if (!parsed.success) throw new UsageError(`invalid source: ${formatZodError(parsed.error)}`);
      await withStores((stores) => upsertInfraSource(stores.db, id, parsed.data));
      console.log(`infrastructure source ${id} registered (${parsed.data.kind})`);
    });
  infra
    .command('list')
    .description('show every registered source: its kind, where it reads, how far it was collected')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const sources = await withStores((stores, config) => listedInfraSources(stores.db, secretsOf(config)));
      if (o.json) printJson(sources);
      else console.log(formatInfraSources(sources));
    });
  infra
    .command('remove')
    .description('unregister a source (and delete the cost rows it read)')
    // Not checked against the id pattern: a row written by hand or by another version, whose id
    // `infra add` would refuse, must still be removable by the id `infra list` shows.
    .argument('<id>', 'the source id, exactly (not a prefix)')
    .action(async (id: string) => {
      const row = await withStores(async (stores) => {
        const removed = await deleteInfraSource(stores.db, id);
        // A FOCUS source's rows would count in every later cost analysis, with nothing left to
        // replace them: they go with it (metric samples are read only for registered sources).
        if (removed) await stores.ch.deleteCostRows({ sources: [removed.id] });
        return removed;
      });
      if (!row) {
        throw new UsageError(
          `no infrastructure source '${terminalText(id).slice(0, 200)}' is registered (ids are exact and case-sensitive): see them with 'optiinfra infra list'`,
        );
      }
      console.log(removedLine(row.id, listedInfraSource(row).kind));
    });
  infra
    .command('collect')
    .description('read every source into ClickHouse now')
    .option('--json', 'machine-readable output')
    .option('--schedule <interval>', 'instead of running now, create or update a schedule (e.g. 5m)', durationArg('1m', '1d'))
    .action(async (o: { json?: boolean; schedule?: string }) =>
      withClient(async (client, config) => {
        if (o.schedule) {
          const outcome = await ensureInfraSchedule(client, config, { every: o.schedule });
          console.log(scheduleOutcomeLine(INFRA_SCHEDULE_ID, o.schedule, outcome));
          return;
        }
        await warnIfNoWorker(client, config, 'the collection');
        const r = (await client.workflow.execute('collectInfra', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `collect-infra/${new Date().toISOString()}`,
        })) as InfraCollection | SourceOutcome[];
        // A worker from before the collection was paged answers with every outcome.
        const c = Array.isArray(r) ? r.reduce(addOutcome, emptyCollection()) : r;
        if (o.json) return printJson(c);
        console.log(table(c.outcomes.map((x) => ({ source: x.id, rows: x.rows, bad: x.bad, error: x.error ?? '' }))));
        console.log(
          `${collectionLine(c)}${c.notListed ? ` (${c.notListed.toLocaleString('en-US')} more not listed; failed sources and bad rows are listed first)` : ''}`,
        );
      }),
    );
}
