/**
 * `optiinfra infra add | collect`: the infrastructure data the agents read (FOCUS cost exports,
 * Prometheus / vLLM / DCGM metrics).
 */
import type { Command } from 'commander';
import { infraSourceSchema } from '../../activities/infra/activities.js';
import { upsertInfraSource } from '../../activities/storage/postgres/agents.js';
import { formatZodError } from '../../common/types.js';
import { addOutcome, collectionLine, emptyCollection, type InfraCollection, type SourceOutcome } from '../../domain/infra/collection.js';
import { ensureInfraSchedule, INFRA_SCHEDULE_ID } from '../schedules.js';
import { scheduleOutcomeLine } from './schedules.js';
import { durationArg, idArg, UsageError } from './args.js';
import { withClient, withStores } from './connect.js';
import { printJson, table } from './format.js';
import { warnIfNoWorker } from '../runtime.js';

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
