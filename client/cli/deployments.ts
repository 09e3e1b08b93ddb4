/**
 * `optiinfra deployment add | list`: deployments whose interactions are collected.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { sourceConfigSchema, type SourceConfig } from '../../activities/collector/sources.js';
import type { Db } from '../../activities/storage/postgres/db.js';
import { getDeployment, listDeployments, setNotifyTargets, upsertDeployment } from '../../activities/storage/postgres/deployments.js';
import { MAX_NOTIFY_TARGETS, notifyTargetSchema, type NotifyTarget } from '../../domain/gate/notify.js';
import { opaqueUrl, redact, safeUrl } from '../../common/secrets.js';
import { formatZodError } from '../../common/types.js';
import { idArg, sampleRateArg, UsageError } from './args.js';
import { withStores } from './connect.js';
import { printJson, table } from './format.js';

const collect = (v: string, prev: string[]) => [...prev, v];

/** Longest source URL (HTTP servers commonly refuse longer request lines and headers). */
export const MAX_SOURCE_URL_CHARS = 8192;
const GLOB = /[*?[\]{}]/;

/**
 * The source of `deployment add`, checked and normalised: an http(s) URL without its fragment, or
 * the absolute form of a JSONL path (the worker that reads it runs in another working directory).
 */
export function sourceFromOptions(o: { sourceUrl?: string; sourcePath?: string }, cwd = process.cwd()): SourceConfig {
  if (!!o.sourceUrl === !!o.sourcePath) throw new UsageError('give exactly one of --source-url or --source-path');
  let candidate: unknown;
  if (o.sourceUrl) {
    if (o.sourceUrl.length > MAX_SOURCE_URL_CHARS) {
      throw new UsageError(
        `invalid source: source url is ${o.sourceUrl.length} characters, at most ${MAX_SOURCE_URL_CHARS} (put long tokens in the server's configuration, not the URL)`,
      );
    }
    candidate = { type: 'http', url: o.sourceUrl };
  } else {
    const p = path.resolve(cwd, o.sourcePath!);
    if (!existsSync(p) && GLOB.test(o.sourcePath!)) {
      throw new UsageError(
        `invalid source: --source-path '${o.sourcePath!.slice(0, 200)}' does not exist and patterns are not expanded: give a JSONL file or a directory of *.jsonl files`,
      );
    }
    candidate = { type: 'jsonl', path: p };
  }
  const parsed = sourceConfigSchema.safeParse(candidate);
  if (!parsed.success) throw new UsageError(`invalid source: ${formatZodError(parsed.error)}`);
  const source = parsed.data;
  if (source.type === 'http') {
    const u = new URL(source.url);
    u.hash = '';
    return { ...source, url: u.href };
  }
  return source;
}

/** A stored source as it may be shown: no credentials, no secret-looking query value, no header value. */
export function displaySource(source: unknown): unknown {
  if (!source || typeof source !== 'object') return source;
  const s = source as { type?: unknown; url?: unknown; headers?: unknown };
  const out: Record<string, unknown> = { ...s };
  if (typeof s.url === 'string') out.url = safeUrl(s.url);
  if (s.headers && typeof s.headers === 'object') out.headers = Object.fromEntries(Object.keys(s.headers).map((k) => [k, '****']));
  return JSON.parse(redact(JSON.stringify(out), []));
}

/** Throws a UsageError naming how to register `id` when it is not a registered deployment. */
export async function requireDeployment(db: Db, id: string): Promise<void> {
  if (!(await getDeployment(db, id))) {
    throw new UsageError(
      `deployment '${id}' is not registered: add it with 'optiinfra deployment add ${id} --source-url URL' (or --source-path PATH)`,
    );
  }
}

function notifyTargets(slack: string[], webhook: string[]): NotifyTarget[] {
  const targets = [...slack.map((url) => ({ kind: 'slack', url })), ...webhook.map((url) => ({ kind: 'webhook', url }))].map((t) => {
    const p = notifyTargetSchema.safeParse(t);
    if (!p.success) throw new UsageError(`invalid --notify target: ${formatZodError(p.error)}`);
    return p.data;
  });
  if (targets.length > MAX_NOTIFY_TARGETS) {
    throw new UsageError(
      `${targets.length} notification targets given; at most ${MAX_NOTIFY_TARGETS} (a channel or a relay can fan out further)`,
    );
  }
  const seen = new Set<string>();
  for (const t of targets) {
    // The same receiver twice would get every notice twice.
    if (seen.has(t.url)) throw new UsageError(`notification target given twice: ${opaqueUrl(t.url)}`);
    seen.add(t.url);
  }
  return targets;
}

export function registerDeploymentCommands(program: Command): void {
  const deployment = program.command('deployment').description('deployments whose interactions are collected');
  deployment
    .command('add')
    .description('register (or update) a deployment and where its interactions come from')
    .argument('<id>', 'deployment id', idArg('deployment id'))
    .option('--source-url <url>', 'HTTP JSON endpoint with cursor pagination (see docs/record-format.md)')
    .option('--source-path <path>', 'a JSONL file or a directory of *.jsonl request logs')
    .option('--sample-rate <rate>', 'share of interactions to score, deterministic by id', sampleRateArg, 1)
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
        const source = sourceFromOptions(o);
        const targets = notifyTargets(o.notifySlack, o.notifyWebhook);
        const { cursorReset } = await withStores(async (stores) => {
          const alike = (await listDeployments(stores.db)).filter((d) => d.id !== id && d.id.toLowerCase() === id.toLowerCase());
          if (alike.length) {
            console.error(
              `warning: deployment ids are case-sensitive: '${id}' is not ${alike.map((d) => `'${d.id}'`).join(', ')} (records name one of them)`,
            );
          }
          const r = await upsertDeployment(stores.db, { id, source, sample_rate: o.sampleRate });
          if (targets.length) await setNotifyTargets(stores.db, id, targets);
          return r;
        });
        const told = targets.length ? `, ${targets.length} notification target(s)` : '';
        console.log(`deployment ${id} registered (${source.type} source, sample rate ${o.sampleRate}${told})`);
        if (cursorReset) {
          console.log(`its source changed: the cursor of the old source was cleared, the next cycle reads the new source from its start`);
        }
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
        const shown = rows.map((r) => ({ ...r, source: displaySource(r.source) }));
        if (o.json) printJson(JSON.parse(redact(JSON.stringify(shown), [])));
        else
          console.log(
            table(shown.map((r) => ({ id: r.id, source: JSON.stringify(r.source), sample_rate: r.sample_rate, cursor: r.cursor }))),
          );
      }),
    );
}
