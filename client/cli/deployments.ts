/**
 * `optiinfra deployment add | list`: deployments whose interactions are collected.
 */
import type { Command } from 'commander';
import { sourceConfigSchema, type SourceConfig } from '../../activities/collector/sources.js';
import { getDeployment, listDeployments, setNotifyTargets, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { notifyTargetSchema, type NotifyTarget } from '../../domain/gate/notify.js';
import { redact } from '../../common/secrets.js';
import { formatZodError } from '../../common/types.js';
import { idArg, rateArg, UsageError } from './args.js';
import { withStores } from './connect.js';
import { printJson, table } from './format.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function notifyTargets(slack: string[], webhook: string[]): NotifyTarget[] {
  return [...slack.map((url) => ({ kind: 'slack', url })), ...webhook.map((url) => ({ kind: 'webhook', url }))].map((t) => {
    const p = notifyTargetSchema.safeParse(t);
    if (!p.success) throw new UsageError(`invalid --notify target: ${formatZodError(p.error)}`);
    return p.data;
  });
}

export function registerDeploymentCommands(program: Command): void {
  const deployment = program.command('deployment').description('deployments whose interactions are collected');
  deployment
    .command('add')
    .description('register (or update) a deployment and where its interactions come from')
    .argument('<id>', 'deployment id', idArg('deployment id'))
    .option('--source-url <url>', 'HTTP JSON endpoint with cursor pagination (see docs/record-format.md)')
    .option('--source-path <path>', 'a JSONL file or a directory of *.jsonl request logs')
    .option('--sample-rate <rate>', 'share of interactions to score, deterministic by id', rateArg, 1)
    .option(
      '--notify-slack <url>',
      'a Slack-compatible incoming webhook told about REJECT, INCONCLUSIVE, failed rollbacks and overrides (repeatable)',
      collect,
      [],
    )
    .option('--notify-webhook <url>', 'a JSON webhook told the same, HMAC-signed with OPTIINFRA_WEBHOOK_SECRET (repeatable)', collect, [])
    .action(
      async (
        id: string,
        o: { sourceUrl?: string; sourcePath?: string; sampleRate: number; notifySlack: string[]; notifyWebhook: string[] },
      ) => {
        if (!!o.sourceUrl === !!o.sourcePath) throw new UsageError('give exactly one of --source-url or --source-path');
        const candidate: unknown = o.sourceUrl ? { type: 'http', url: o.sourceUrl } : { type: 'jsonl', path: o.sourcePath };
        const parsed = sourceConfigSchema.safeParse(candidate);
        if (!parsed.success) throw new UsageError(`invalid source: ${formatZodError(parsed.error)}`);
        const source: SourceConfig = parsed.data;
        const targets = notifyTargets(o.notifySlack, o.notifyWebhook);
        await withStores(async (stores) => {
          await upsertDeployment(stores.db, { id, source, sample_rate: o.sampleRate });
          if (targets.length) await setNotifyTargets(stores.db, id, targets);
        });
        const told = targets.length ? `, ${targets.length} notification target(s)` : '';
        console.log(`deployment ${id} registered (${source.type} source, sample rate ${o.sampleRate}${told})`);
      },
    );
  deployment
    .command('notify')
    .description("set where a deployment's gate outcomes are sent (replaces the targets; none: stop notifying)")
    .argument('<id>', 'deployment id', idArg('deployment id'))
    .option('--slack <url>', 'a Slack-compatible incoming webhook (repeatable)', collect, [])
    .option('--webhook <url>', 'a JSON webhook, HMAC-signed with OPTIINFRA_WEBHOOK_SECRET (repeatable)', collect, [])
    .action(async (id: string, o: { slack: string[]; webhook: string[] }) => {
      const targets = notifyTargets(o.slack, o.webhook);
      await withStores(async (stores) => {
        if (!(await getDeployment(stores.db, id))) throw new UsageError(`deployment '${id}' is not registered`);
        await setNotifyTargets(stores.db, id, targets);
      });
      console.log(`deployment ${id}: ${targets.length ? `${targets.length} notification target(s)` : 'no notifications'}`);
    });
  deployment
    .command('list')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) =>
      withStores(async (stores) => {
        const rows = await listDeployments(stores.db);
        if (o.json) printJson(JSON.parse(redact(JSON.stringify(rows), [])));
        else
          console.log(
            table(
              rows.map((r) => ({ id: r.id, source: redact(JSON.stringify(r.source), []), sample_rate: r.sample_rate, cursor: r.cursor })),
            ),
          );
      }),
    );
}
