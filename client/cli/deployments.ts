/**
 * `optiinfra deployment add | list`: deployments whose interactions are collected.
 */
import type { Command } from 'commander';
import { sourceConfigSchema, type SourceConfig } from '../../activities/collector/sources.js';
import { listDeployments, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { formatZodError } from '../../common/types.js';
import { idArg, rateArg, UsageError } from './args.js';
import { withStores } from './connect.js';
import { printJson, table } from './format.js';

export function registerDeploymentCommands(program: Command): void {
  const deployment = program.command('deployment').description('deployments whose interactions are collected');
  deployment
    .command('add')
    .description('register (or update) a deployment and where its interactions come from')
    .argument('<id>', 'deployment id', idArg('deployment id'))
    .option('--source-url <url>', 'HTTP JSON endpoint with cursor pagination (see docs/record-format.md)')
    .option('--source-path <path>', 'a JSONL file or a directory of *.jsonl request logs')
    .option('--sample-rate <rate>', 'share of interactions to score, deterministic by id', rateArg, 1)
    .action(async (id: string, o: { sourceUrl?: string; sourcePath?: string; sampleRate: number }) => {
      if (!!o.sourceUrl === !!o.sourcePath) throw new UsageError('give exactly one of --source-url or --source-path');
      const candidate: unknown = o.sourceUrl ? { type: 'http', url: o.sourceUrl } : { type: 'jsonl', path: o.sourcePath };
      const parsed = sourceConfigSchema.safeParse(candidate);
      if (!parsed.success) throw new UsageError(`invalid source: ${formatZodError(parsed.error)}`);
      const source: SourceConfig = parsed.data;
      await withStores((stores) => upsertDeployment(stores.db, { id, source, sample_rate: o.sampleRate }));
      console.log(`deployment ${id} registered (${source.type} source, sample rate ${o.sampleRate})`);
    });
  deployment
    .command('list')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) =>
      withStores(async (stores) => {
        const rows = await listDeployments(stores.db);
        if (o.json) printJson(rows);
        else
          console.log(
            table(rows.map((r) => ({ id: r.id, source: JSON.stringify(r.source), sample_rate: r.sample_rate, cursor: r.cursor }))),
          );
      }),
    );
}
