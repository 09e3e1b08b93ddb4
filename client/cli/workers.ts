/**
 * `optiinfra workers`: the workers seen recently, their judge settings, which secrets they share
 * (as group labels, never fingerprints), and a warning for each setting in which workers of a
 * task queue differ.
 */
import type { Command } from 'commander';
import { fleetWarnings, RECENT_MINUTES, recentWorkers, secretLabels } from '../../activities/storage/postgres/workers.js';
import { withStores } from './connect.js';
import { printJson, table, terminalText } from './format.js';

export function registerWorkersCommand(program: Command): void {
  program
    .command('workers')
    .description(`the workers seen in the last ${RECENT_MINUTES} minutes, and the settings in which workers of a task queue differ`)
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) =>
      withStores(async ({ db }) => {
        const workers = await recentWorkers(db);
        const [webhook, keys] = [secretLabels(workers, 'webhookSecret'), secretLabels(workers, 'encryptionKeys')];
        const rows = workers.map((w, i) => ({
          identity: w.identity,
          host: w.host,
          task_queue: w.taskQueue,
          started: w.startedAt,
          last_seen: w.lastSeen,
          judge: w.fingerprints.judge,
          judge_mode: w.fingerprints.judgeMode,
          prompt_versions: w.fingerprints.promptVersions,
          webhook_secret: webhook[i],
          encryption_keys: keys[i],
        }));
        const warnings = fleetWarnings(workers);
        if (o.json) return printJson({ workers: rows, warnings });
        console.log(table(rows));
        for (const w of warnings) console.log(terminalText(w));
      }),
    );
}
