/**
 * The analysis agents from the command line: `optiinfra review` (all agents, then one executive
 * summary), `optiinfra recommendations` (what their latest runs stored) and `optiinfra ask`.
 */
import type { Command } from 'commander';
import { latestRecommendations } from '../../activities/storage/postgres/agents.js';
import { AGENTS, type AgentName } from '../../domain/agents/types.js';
import type { ReviewResult } from '../../workflows/agents/review.js';
import type { AgentRunResult } from '../../workflows/agents/run-agent.js';
import { uiLink, warnIfNoWorker } from '../runtime.js';
import { ensureReviewSchedule, REVIEW_SCHEDULE_ID } from '../schedules.js';
import { scheduleOutcomeLine } from './schedules.js';
import { agentListArg, durationArg, intArg, requireAgent, UsageError } from './args.js';
import { withClient, withStores } from './connect.js';
import { formatAgentRun, formatRecommendations, printJson, terminalText } from './format.js';

export function registerReviewCommands(program: Command): void {
  program
    .command('review')
    .description('the optimisation review: the cost, performance, resource and application agents in parallel, then one executive summary')
    .option('--agents <list>', `comma-separated subset of ${AGENTS.join(',')}`, agentListArg)
    .option('--days <n>', 'analysis window in days (default: 30 for cost, 1 for the others)', intArg('--days', 1, 366))
    .option('--schedule <interval>', 'instead of running now, create or update a schedule (e.g. 1d)', durationArg('1m', '30d'))
    .option('--json', 'machine-readable output')
    .action(async (o: { agents?: AgentName[]; days?: number; schedule?: string; json?: boolean }) =>
      withClient(async (client, config) => {
        if (o.schedule) {
          const outcome = await ensureReviewSchedule(client, config, { every: o.schedule, agents: o.agents, days: o.days });
          console.log(scheduleOutcomeLine(REVIEW_SCHEDULE_ID, o.schedule, outcome));
          return;
        }
        await warnIfNoWorker(client, config, 'the review');
        const workflowId = `review/${new Date().toISOString()}`;
        const link = uiLink(config, workflowId);
        console.error(`started ${workflowId}${link ? `\n  ${link}` : ''}`);
        const r = (await client.workflow.execute('optimizationReview', {
          taskQueue: config.temporal.taskQueue,
          workflowId,
          args: [{ agents: o.agents, days: o.days }],
        })) as ReviewResult;
        if (o.json) return printJson(r);
        for (const a of r.agents) console.log(`\n${formatAgentRun(a)}`);
        console.log(`\nEXECUTIVE SUMMARY (${r.summaryBy}):\n${terminalText(r.summary, { newlines: true })}`);
      }),
    );

  program
    .command('recommendations')
    .description('stored recommendations of the latest run of each agent')
    .option('--agent <name>', 'only this agent')
    .option('--json', 'machine-readable output')
    .action(async (o: { agent?: string; json?: boolean }) => {
      if (o.agent) requireAgent(o.agent);
      await withStores(async (stores) => {
        const rows = await latestRecommendations(stores.db, o.agent);
        if (o.json) return printJson(rows);
        console.log(formatRecommendations(rows));
      });
    });

  program
    .command('ask')
    .description('ask an agent a question about the stored data (answered from the numbers only)')
    .argument('<agent>', AGENTS.join(' | '))
    .argument('<question>', 'the question, in quotes')
    .option('--days <n>', 'analysis window in days', intArg('--days', 1, 366))
    .option('--json', 'machine-readable output')
    .action(async (agent: string, question: string, o: { days?: number; json?: boolean }) => {
      requireAgent(agent);
      if (!question.trim() || question.length > 2000) throw new UsageError('the question must be 1-2000 characters');
      await withClient(async (client, config) => {
        await warnIfNoWorker(client, config, 'the question');
        const r = (await client.workflow.execute(`${agent}Agent`, {
          taskQueue: config.temporal.taskQueue,
          workflowId: `ask/${agent}/${new Date().toISOString()}`,
          args: [{ question, days: o.days }],
        })) as AgentRunResult;
        if (o.json) return printJson({ agent, question, status: r.status, error: r.error, answer: r.answer });
        if (r.status === 'failed') throw new UsageError(`the ${agent} agent could not answer: ${r.error}`);
        console.log(`${terminalText(r.answer?.text ?? '', { newlines: true })}\n(${r.answer?.generatedBy})`);
      });
    });
}
