/**
 * The steps every analysis agent shares around its own analysis: window, analysis (an activity
 * that returns findings and small aggregates), narrative (LLM or template), record. A failing
 * analysis records its error on the run and completes; the review reports it.
 */
import { proxyActivities, proxyLocalActivities, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { AgentActivities } from '../../activities/agents/index.js';
import type { CollectorActivities } from '../../activities/collector/activities.js';
import { raise, rootCause } from '../../common/failures.js';
import { formatZodError } from '../../common/types.js';
import { SA } from '../../common/search-attributes.js';
import type { CycleSettings } from '../../domain/collector/collection.js';
import { templateAnswer, templateNarrative, type Narrative } from '../../domain/agents/narrative.js';
import { agentInputSchema, type AgentAnalysis, type AgentName, type AgentWindow, type Finding } from '../../domain/agents/types.js';
import { agentOptions, analysisOptions, llmOptions, localOptions } from '../options.js';

export const acts = proxyActivities<AgentActivities>(agentOptions);
/**
 * The analyses (and the `gather…` activities of workflows recorded before them), with a heartbeat
 * timeout. Activity options are not part of the history a replay matches, so workflows recorded
 * with `acts` replay with these unchanged.
 */
export const analysisActs = proxyActivities<AgentActivities>(analysisOptions);
export const local = proxyLocalActivities<CollectorActivities>(localOptions);
export const llmActs = (settings: CycleSettings) => proxyActivities<AgentActivities>(llmOptions(settings));

/**
 * Patch id: from this change on, an agent's findings are computed inside its analysis activity
 * (history holds findings, not rows). Workflows recorded before it replay the old path
 * (workflows/agents/legacy.ts).
 */
export const FINDINGS_IN_ACTIVITIES = 'agent-findings-in-activities';

export const errorText = (e: unknown): string => rootCause(e).message;

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
    raise('InvalidInput', `empty time range: from ${new Date(from).toISOString()} is not before to ${new Date(to).toISOString()}`);
  }
  const stepSeconds = input.stepSeconds ?? Math.max(15, Math.round((to - from) / 1000 / 300));
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), stepSeconds };
}

export async function runAgent(
  agent: AgentName,
  raw: AgentInput,
  analyse: (w: AgentWindow, s: CycleSettings) => Promise<AgentAnalysis>,
): Promise<AgentRunResult> {
  const parsed = agentInputSchema.safeParse(raw);
  if (!parsed.success) raise('InvalidInput', formatZodError(parsed.error));
  const input: AgentInput = parsed.data;
  const runId = workflowInfo().workflowId;
  upsertSearchAttributes([{ key: SA.kind, value: `agent-${agent}` }]);
  const settings = await local.cycleSettings();
  let window: AgentWindow = { from: input.from ?? '', to: input.to ?? '', stepSeconds: input.stepSeconds ?? 0 };
  let a: AgentAnalysis;
  try {
    window = windowOf(agent, input);
    a = await analyse(window, settings);
  } catch (e) {
    const error = errorText(e);
    const failed: AgentRunResult = {
      runId,
      agent,
      status: 'failed',
      error,
      warnings: [],
      window,
      dataPoints: 0,
      findings: [],
      summary: '',
    };
    if (!input.question)
      await acts.recordAgentRun({
        id: runId,
        agent,
        reviewId: input.reviewId,
        status: 'failed',
        error,
        window,
        dataPoints: 0,
        findings: [],
        summary: '',
      });
    setCurrentDetails(`failed: ${error}`);
    return failed;
  }
  const template = templateNarrative(agent, a.findings, a.totals);
  const result: AgentRunResult = {
    runId,
    agent,
    status: 'ok',
    warnings: a.warnings,
    window,
    dataPoints: a.dataPoints,
    findings: a.findings,
    totals: a.totals,
    summary: a.notListed ? `${a.summary ?? template.summary} ${a.notListed}` : (a.summary ?? template.summary),
  };
  const llm = settings.judge === 'offline' ? undefined : llmActs(settings);
  if (input.question) {
    let answer = { text: templateAnswer(input.question, a.findings), generatedBy: 'template' };
    if (llm) {
      try {
        const r = await llm.answerWithLlm({ agent, question: input.question, findings: a.findings, totals: a.totals });
        answer = { text: r.answer, generatedBy: r.generatedBy };
      } catch (e) {
        answer.text += ` (The LLM answer was unavailable: ${errorText(e)}.)`;
      }
    }
    return { ...result, answer };
  }
  result.narrative = template;
  if (llm && a.findings.length) {
    try {
      result.narrative = await llm.narrateWithLlm({ agent, findings: a.findings, totals: a.totals });
    } catch (e) {
      result.narrative = { ...template, summary: `${template.summary} (LLM narrative unavailable: ${errorText(e)}; template used.)` };
    }
  }
  await acts.recordAgentRun({
    id: runId,
    agent,
    reviewId: input.reviewId,
    status: 'ok',
    window,
    dataPoints: a.dataPoints,
    findings: a.findings,
    totals: a.totals,
    summary: result.summary,
    narrative: result.narrative,
  });
  setCurrentDetails(`${a.findings.length} findings: ${result.summary.slice(0, 300)}`);
  return result;
}
