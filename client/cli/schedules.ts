/**
 * `optiinfra schedule create | list | describe | pause | unpause | trigger | delete`: the Temporal
 * Schedule of each deployment's collection cycle (list also shows the review and infrastructure schedules).
 */
import type { Command } from 'commander';
import { ScheduleNotFoundError } from '@temporalio/client';
import { INFRA_SCHEDULE_ID, REVIEW_SCHEDULE_ID, scheduleId, triggerSchedule, upsertSchedule, type ScheduleOutcome } from '../schedules.js';
import { durationArg, idArg, intArg, UsageError } from './args.js';
import { withClient, withStores } from './connect.js';
import { requireDeployment } from './deployments.js';
import { printJson, table } from './format.js';

const SCHEDULE_ACTIONS = [
  ['describe', 'show a schedule'],
  ['pause', 'pause a schedule'],
  ['unpause', 'resume a schedule'],
  ['trigger', 'start a cycle now'],
  ['delete', 'delete a schedule'],
] as const;

type ScheduleAction = (typeof SCHEDULE_ACTIONS)[number][0];

export function registerScheduleCommands(program: Command): void {
  const schedule = program.command('schedule').description('Temporal Schedules: one collection cycle per deployment every interval');
  schedule
    .command('create')
    .description('create or update the schedule of a deployment (idempotent)')
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .option('--every <interval>', 'interval, e.g. 15m', durationArg('1m', '1d'), '15m')
    .option('--paused', 'create it paused')
    .option(
      '--max-concurrent-batches <n>',
      'scoring batches of one cycle in flight at once, over all workers (default 4)',
      intArg('max concurrent batches', 1, 50),
    )
    .action(async (o: { deployment: string; every: string; paused?: boolean; maxConcurrentBatches?: number }) => {
      // A schedule of an unregistered deployment would start a failing cycle every interval.
      await withStores((stores) => requireDeployment(stores.db, o.deployment));
      const outcome = await withClient((c, config) => upsertSchedule(c, config, o));
      console.log(scheduleOutcomeLine(scheduleId(o.deployment), o.every, outcome));
    });
  schedule
    .command('list')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) =>
      withClient(async (client) => {
        const rows: Array<Record<string, unknown>> = [];
        for await (const s of client.schedule.list()) {
          if (!s.scheduleId.startsWith('collect/') && ![REVIEW_SCHEDULE_ID, INFRA_SCHEDULE_ID].includes(s.scheduleId)) continue;
          rows.push({
            schedule: s.scheduleId,
            paused: s.state.paused,
            next: s.info.nextActionTimes[0]?.toISOString(),
            last: s.info.recentActions.at(-1)?.takenAt.toISOString(),
          });
        }
        if (o.json) printJson(rows);
        else console.log(table(rows));
      }),
    );
  for (const [name, what] of SCHEDULE_ACTIONS) {
    schedule
      .command(name)
      .description(what)
      .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
      .action(async (o: { deployment: string }) => runScheduleAction(name, o.deployment));
  }
}

async function runScheduleAction(name: ScheduleAction, deployment: string): Promise<void> {
  await withClient(async (client) => {
    const h = client.schedule.getHandle(scheduleId(deployment));
    try {
      if (name === 'describe') {
        const d = await h.describe();
        printJson({
          schedule: d.scheduleId,
          paused: d.state.paused,
          note: d.state.note,
          spec: d.spec,
          overlap: d.policies.overlap,
          catchupWindowMs: d.policies.catchupWindow,
          nextActionTimes: d.info.nextActionTimes.slice(0, 3),
          recentActions: d.info.recentActions.slice(-5).map((a) => ({
            scheduledAt: a.scheduledAt,
            takenAt: a.takenAt,
            workflowId: a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : undefined,
          })),
          runningActions: d.info.runningActions.map((a) => a.workflow.workflowId),
        });
      } else if (name === 'pause') await h.pause('paused from the optiinfra CLI');
      else if (name === 'unpause') await h.unpause('resumed from the optiinfra CLI');
      else if (name === 'trigger') {
        const t = await triggerSchedule(client, scheduleId(deployment));
        if (!t.started) {
          console.log(triggerSkippedLine(scheduleId(deployment), t.running));
          return;
        }
      } else await h.delete();
    } catch (e) {
      if (e instanceof ScheduleNotFoundError) {
        throw new UsageError(
          `no schedule for deployment '${deployment}': create it with 'optiinfra schedule create --deployment ${deployment}'`,
        );
      }
      throw e;
    }
    if (name !== 'describe') console.log(`schedule ${scheduleId(deployment)}: ${name} done`);
  });
}

/** "schedule collect/x created: every 15m", "... updated: every 15m → 30m; ..." or "... unchanged: every 15m". */
export function scheduleOutcomeLine(id: string, every: string, o: ScheduleOutcome): string {
  if (o.created) return `schedule ${id} created: every ${every}`;
  if (!o.changes.length) return `schedule ${id} unchanged: every ${every}`;
  return `schedule ${id} updated: ${o.changes.join('; ')}`;
}

/** Why a trigger started no cycle. */
export function triggerSkippedLine(id: string, running: string): string {
  return `schedule ${id}: cycle ${running} is still running, so no second cycle was started (the next cycle takes what arrives meanwhile)`;
}
