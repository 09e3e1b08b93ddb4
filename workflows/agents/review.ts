/** The optimisation review: the four agents as parallel child workflows, then one executive summary. */
import { executeChild, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { raise } from '../../common/failures.js';
import { formatZodError } from '../../common/types.js';
import { SA } from '../../common/search-attributes.js';
import { templateNarrative } from '../../domain/agents/narrative.js';
import { AGENTS, reviewInputSchema, type AgentName } from '../../domain/agents/types.js';
import { applicationAgent } from './application/application-agent.js';
import { costAgent } from './cost/cost-agent.js';
import { performanceAgent } from './performance/performance-agent.js';
import { resourceAgent } from './resource/resource-agent.js';
import { acts, errorText, llmActs, local, type AgentRunResult } from './run-agent.js';

export interface ReviewInput {
  agents?: AgentName[];
  days?: number;
}

export interface ReviewResult {
  reviewId: string;
  agents: AgentRunResult[];
  failed: AgentName[];
  summary: string;
  summaryBy: string;
}

const AGENT_WORKFLOWS = { cost: costAgent, performance: performanceAgent, resource: resourceAgent, application: applicationAgent } as const;

function failedRun(runId: string, agent: AgentName, error: string): AgentRunResult {
  return {
    runId,
    agent,
    status: 'failed',
    error,
    warnings: [],
    window: { from: '', to: '', stepSeconds: 0 },
    dataPoints: 0,
    findings: [],
    summary: '',
  };
}

export async function optimizationReview(raw: ReviewInput = {}): Promise<ReviewResult> {
  const parsed = reviewInputSchema.safeParse(raw);
  if (!parsed.success) raise('InvalidInput', formatZodError(parsed.error));
  const input = parsed.data;
  const agents = (input.agents?.length ? input.agents : [...AGENTS]) as AgentName[];
  const bad = agents.filter((a) => !(AGENTS as readonly string[]).includes(a));
  if (bad.length) raise('InvalidInput', `unknown agents: ${bad.join(', ')} (known: ${AGENTS.join(', ')})`);
  const reviewId = workflowInfo().workflowId;
  upsertSearchAttributes([{ key: SA.kind, value: 'review' }]);
  const settled = await Promise.allSettled(
    agents.map((agent) =>
      executeChild(AGENT_WORKFLOWS[agent], {
        workflowId: `${reviewId}/${agent}`,
        args: [{ reviewId, days: input.days }],
        staticSummary: `${agent} agent of review ${reviewId}`,
      }),
    ),
  );
  const results: AgentRunResult[] = settled.map((s, i) => {
    const runId = `${reviewId}/${agents[i]}`;
    if (s.status === 'rejected') return failedRun(runId, agents[i]!, errorText(s.reason));
    return 'runId' in s.value ? s.value : failedRun(runId, agents[i]!, 'the agent returned no analysis');
  });
  const failed = results.filter((r) => r.status === 'failed').map((r) => r.agent);
  const all = results.flatMap((r) => r.findings);
  const totals = results.find((r) => r.agent === 'cost')?.totals;
  const settings = await local.cycleSettings();
  let narrative = templateNarrative('review', all, totals);
  if (settings.judge !== 'offline' && all.length) {
    try {
      narrative = await llmActs(settings).narrateWithLlm({ agent: 'review', findings: all, totals });
    } catch (e) {
      narrative = { ...narrative, summary: `${narrative.summary} (LLM summary unavailable: ${errorText(e)}.)` };
    }
  }
  const errors = Object.fromEntries(results.filter((r) => r.error).map((r) => [r.agent, r.error!]));
  const summary = `${narrative.summary}${failed.length ? ` Not analysed: ${failed.map((a) => `${a} (${errors[a]})`).join('; ')}.` : ''}`;
  await acts.recordReview({ id: reviewId, agents, failed, summary, summaryBy: narrative.generatedBy, errors });
  setCurrentDetails(summary.slice(0, 500));
  return { reviewId, agents: results, failed, summary, summaryBy: narrative.generatedBy };
}
