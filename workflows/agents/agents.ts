/**
 * The analysis agents (LLM integration points 1-4) and the optimisation review, as workflows.
 * Each agent: gather (activity) -> findings (pure code in common/, run here, deterministic) ->
 * narrative (LLM activity, or template) -> stored in PostgreSQL. A failing agent records its
 * error on its run and completes; the review reports it and keeps the others' results.
 */

import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, executeChild, proxyActivities, proxyLocalActivities, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { AgentActivities } from '../../activities/agents/index.js';
import type { AgentWindow } from '../../domain/agents/types.js';
import type { CollectorActivities } from '../../activities/collector/activities.js';
import type { GateActivities } from '../../activities/gate/activities.js';
import { AGENTS, type AgentName, type Finding } from '../../domain/agents/types.js';
import { templateAnswer, templateNarrative, type Narrative } from '../../domain/agents/narrative.js';
import { applicationFindings } from '../../domain/agents/application/findings.js';
import type { CycleSettings } from '../../domain/collector/collection.js';
import { costFindings, executiveSummary } from '../../domain/agents/cost/findings.js';
import { templateExplanation } from '../../domain/agents/application/explain.js';
import type { Decision, Evidence, Explanation } from '../../domain/gate/types.js';
import { INSTANCE_TYPES } from '../../domain/agents/instance-catalog.js';
import { llmRetryPolicy } from '../../common/llm-policy.js';
import { performanceFindings } from '../../domain/agents/performance/findings.js';
import { resourceFindings } from '../../domain/agents/resource/findings.js';
import { SA } from '../../common/search-attributes.js';

const acts = proxyActivities<AgentActivities>({
  startToCloseTimeout: '5 minutes',
  // Sources that stay down fail the agent run (with the reason) instead of stalling a review.
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 4, nonRetryableErrorTypes: ['NoData', 'UnknownSource'] },
});
const local = proxyLocalActivities<CollectorActivities>({ startToCloseTimeout: '10s' });

function llmActs(settings: CycleSettings) {
  return proxyActivities<AgentActivities & GateActivities>({
    taskQueue: settings.judgeTaskQueue,
    startToCloseTimeout: `${settings.llmTimeoutSec + 30}s`,
    retry: llmRetryPolicy(settings.llmMaxRetries),
  });
}

const causeOf = (e: unknown): string => {
  let c: unknown = e;
  while ((c instanceof ActivityFailure || c instanceof ChildWorkflowFailure) && c.cause) c = c.cause;
  return c instanceof Error ? c.message : String(c);
};

export interface AgentInput {
  /** Analysis window: the last `days` (default 30 for cost, 1 otherwise) or explicit from/to. */
  days?: number;
  from?: string;
  to?: string;
  stepSeconds?: number;
  reviewId?: string;
  /** With a question: answer it from the analysis instead of storing a run. */
  question?: string;
}

export interface AgentRunResult {
  runId: string;
  agent: AgentName;
  status: 'ok' | 'failed';
  error?: string;
  warnings: string[];
  window: AgentWindow;
  dataPoints: number;
  findings: Finding[];
  totals?: Record<string, number>;
  summary: string;
  narrative?: Narrative;
  answer?: { text: string; generatedBy: string };
}

function windowOf(agent: AgentName, input: AgentInput): AgentWindow {
  const to = input.to ? Date.parse(input.to) : Date.now();
  const days = input.days ?? (agent === 'cost' ? 30 : 1);
  const from = input.from ? Date.parse(input.from) : to - days * 86_400_000;
  if (!(from < to)) {
    throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: `empty time range: from ${new Date(from).toISOString()} is not before to ${new Date(to).toISOString()}` });
  }
  const stepSeconds = input.stepSeconds ?? Math.max(15, Math.round((to - from) / 1000 / 300));
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), stepSeconds };
}

interface Analysis {
  findings: Finding[];
  totals?: Record<string, number>;
  summary?: string;
  dataPoints: number;
  warnings: string[];
}

/** The steps every agent shares around its own gather + findings. */
async function runAgent(agent: AgentName, input: AgentInput, analyse: (w: AgentWindow, s: CycleSettings) => Promise<Analysis>): Promise<AgentRunResult> {
  const runId = workflowInfo().workflowId;
  upsertSearchAttributes([{ key: SA.kind, value: `agent-${agent}` }]);
  const settings = await local.cycleSettings();
  let window: AgentWindow = { from: input.from ?? '', to: input.to ?? '', stepSeconds: input.stepSeconds ?? 0 };
  let a: Analysis;
  try {
    window = windowOf(agent, input);
    a = await analyse(window, settings);
  } catch (e) {
    const error = causeOf(e);
    const failed: AgentRunResult = { runId, agent, status: 'failed', error, warnings: [], window, dataPoints: 0, findings: [], summary: '' };
    if (!input.question) await acts.recordAgentRun({ id: runId, agent, reviewId: input.reviewId, status: 'failed', error, window, dataPoints: 0, findings: [], summary: '' });
    setCurrentDetails(`failed: ${error}`);
    return failed;
  }
  const template = templateNarrative(agent, a.findings, a.totals);
  const result: AgentRunResult = { runId, agent, status: 'ok', warnings: a.warnings, window, dataPoints: a.dataPoints, findings: a.findings, totals: a.totals, summary: a.summary ?? template.summary };
  const llm = settings.judge === 'offline' ? undefined : llmActs(settings);
  if (input.question) {
    let answer = { text: templateAnswer(input.question, a.findings), generatedBy: 'template' };
    if (llm) {
      try {
        const r = await llm.answerWithLlm({ agent, question: input.question, findings: a.findings, totals: a.totals });
        answer = { text: r.answer, generatedBy: r.generatedBy };
      } catch (e) {
        answer.text += ` (The LLM answer was unavailable: ${causeOf(e)}.)`;
      }
    }
    return { ...result, answer };
  }
  result.narrative = template;
  if (llm && a.findings.length) {
    try {
      result.narrative = await llm.narrateWithLlm({ agent, findings: a.findings, totals: a.totals });
    } catch (e) {
      result.narrative = { ...template, summary: `${template.summary} (LLM narrative unavailable: ${causeOf(e)}; template used.)` };
    }
  }
  await acts.recordAgentRun({ id: runId, agent, reviewId: input.reviewId, status: 'ok', window, dataPoints: a.dataPoints, findings: a.findings, totals: a.totals, summary: result.summary, narrative: result.narrative });
  setCurrentDetails(`${a.findings.length} findings: ${result.summary.slice(0, 300)}`);
  return result;
}

export async function costAgent(input: AgentInput = {}): Promise<AgentRunResult> {
  return runAgent('cost', input, async (w) => {
    const g = await acts.gatherCost(w);
    const { findings, totals } = costFindings({ rows: g.rows, utilisation: g.utilisation, catalog: INSTANCE_TYPES, tokensByDeployment: g.tokensByDeployment, window: { from: w.from, to: w.to } });
    return { findings, totals: { ...totals }, summary: executiveSummary(findings, totals), dataPoints: g.dataPoints, warnings: g.warnings };
  });
}

export async function performanceAgent(input: AgentInput = {}): Promise<AgentRunResult> {
  return runAgent('performance', input, async (w) => {
    const g = await acts.gatherPerformance(w);
    return { findings: g.series.flatMap((s) => performanceFindings(s)), dataPoints: g.dataPoints, warnings: g.warnings };
  });
}

export async function resourceAgent(input: AgentInput = {}): Promise<AgentRunResult> {
  return runAgent('resource', input, async (w) => {
    const g = await acts.gatherResource(w);
    return { findings: resourceFindings(g.series, INSTANCE_TYPES), dataPoints: g.dataPoints, warnings: g.warnings };
  });
}

export interface ExplainTask {
  task: 'explain';
  decision: Decision;
  evidence?: Evidence;
  reason: string;
  settings: CycleSettings;
}

/**
 * The application agent. As a child of the gate (`task: 'explain'`) it turns the gate's numbers
 * into an explanation; as a child of the review it analyses answer quality per deployment and
 * version with the gate's statistics.
 */
export async function applicationAgent(input: ExplainTask | (AgentInput & { task?: 'review' })): Promise<Explanation | AgentRunResult> {
  if (input.task === 'explain') return explainDecision(input);
  return runAgent('application', input, async (w, s) => {
    const g = await acts.gatherApplication({ ...w, judge: s.judge, promptVersions: s.promptVersions });
    return { findings: applicationFindings(g.deployments), dataPoints: g.dataPoints, warnings: g.warnings };
  });
}

async function explainDecision(input: ExplainTask): Promise<Explanation> {
  const template = templateExplanation(input.decision, input.evidence, input.reason);
  if (input.settings.judge === 'offline') return template;
  try {
    return await llmActs(input.settings).explainWithLlm({ decision: input.decision, evidence: input.evidence, reason: input.reason });
  } catch (e) {
    return { ...template, details: [...template.details, `The LLM narrative was unavailable (${causeOf(e)}); this text is the template.`] };
  }
}

const AGENT_WORKFLOWS = { cost: costAgent, performance: performanceAgent, resource: resourceAgent, application: applicationAgent } as const;

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

/** Run the agents as parallel children, then write one executive summary over all of them. */
export async function optimizationReview(input: ReviewInput = {}): Promise<ReviewResult> {
  const agents = input.agents?.length ? input.agents : [...AGENTS];
  const bad = agents.filter((a) => !(AGENTS as readonly string[]).includes(a));
  if (bad.length) throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: `unknown agents: ${bad.join(', ')} (known: ${AGENTS.join(', ')})` });
  const reviewId = workflowInfo().workflowId;
  upsertSearchAttributes([{ key: SA.kind, value: 'review' }]);
  const settled = await Promise.allSettled(
    agents.map((agent) =>
      executeChild(AGENT_WORKFLOWS[agent] as (i: AgentInput) => Promise<AgentRunResult>, {
        workflowId: `${reviewId}/${agent}`,
        args: [{ reviewId, days: input.days }],
        staticSummary: `${agent} agent of review ${reviewId}`,
      }),
    ),
  );
  const results: AgentRunResult[] = settled.map((s, i) =>
    s.status === 'fulfilled'
      ? s.value
      : { runId: `${reviewId}/${agents[i]}`, agent: agents[i]!, status: 'failed', error: causeOf(s.reason), warnings: [], window: { from: '', to: '', stepSeconds: 0 }, dataPoints: 0, findings: [], summary: '' },
  );
  const failed = results.filter((r) => r.status === 'failed').map((r) => r.agent);
  const all = results.flatMap((r) => r.findings);
  const totals = results.find((r) => r.agent === 'cost')?.totals;
  const settings = await local.cycleSettings();
  let narrative = templateNarrative('review', all, totals);
  if (settings.judge !== 'offline' && all.length) {
    try {
      narrative = await llmActs(settings).narrateWithLlm({ agent: 'review', findings: all, totals });
    } catch (e) {
      narrative = { ...narrative, summary: `${narrative.summary} (LLM summary unavailable: ${causeOf(e)}.)` };
    }
  }
  const errors = Object.fromEntries(results.filter((r) => r.error).map((r) => [r.agent, r.error!]));
  const summary = `${narrative.summary}${failed.length ? ` Not analysed: ${failed.map((a) => `${a} (${errors[a]})`).join('; ')}.` : ''}`;
  await acts.recordReview({ id: reviewId, agents, failed, summary, summaryBy: narrative.generatedBy, errors });
  setCurrentDetails(summary.slice(0, 500));
  return { reviewId, agents: results, failed, summary, summaryBy: narrative.generatedBy };
}

export async function collectInfra(): Promise<Array<{ id: string; rows: number; bad: number; error?: string }>> {
  upsertSearchAttributes([{ key: SA.kind, value: 'collect-infra' }]);
  const sources = await acts.listInfraSources();
  return Promise.all(sources.map((s) => acts.collectInfraSource({ id: s.id })));
}

