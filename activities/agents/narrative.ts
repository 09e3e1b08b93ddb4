/** What every agent shares: the LLM narrative of its findings, answers to questions, and the record of its run. */
import { raise } from '../../common/failures.js';
import {
  AGENT_PROMPT_VERSION,
  answerSchema,
  cleanReplyText,
  narrativeSchema,
  numbersNotInAnalysis,
  renderAskPrompt,
  renderNarrativePrompt,
  replyProblem,
  type Narrative,
} from '../../domain/agents/narrative.js';
import type { AgentName, Finding } from '../../domain/agents/types.js';
import type { ActivityDeps } from '../deps.js';
import * as repo from '../storage/postgres/agents.js';

/**
 * Raises LlmInvalidReply (retried, then the template is used) when an LLM's cleaned texts are
 * blank, cite numbers that are not in the analysis, or carry markup, links or actions the data
 * does not hold.
 */
export function checkReply(what: string, texts: readonly string[], user: string): void {
  if (!texts[0]) raise('LlmInvalidReply', `the ${what} is empty once control characters and spaces are removed`);
  const invented = numbersNotInAnalysis(texts, user);
  if (invented.length)
    raise('LlmInvalidReply', `the ${what} cites numbers that are not in the analysis: ${invented.slice(0, 5).join(', ')}`);
  const problem = replyProblem(texts, user);
  if (problem) raise('LlmInvalidReply', `the ${what} is not usable: ${problem}`);
}

export function createNarrativeActivities(deps: ActivityDeps) {
  const { db } = deps;

  function llm() {
    if (!deps.llm) raise('LlmDisabled', 'no LLM is configured on this worker');
    return deps.llm;
  }

  /** The LLM's narrative of an agent's findings (numbers must come from the findings). */
  async function narrateWithLlm(input: {
    agent: AgentName | 'review';
    findings: Finding[];
    totals?: Record<string, number>;
  }): Promise<Narrative> {
    const prompt = renderNarrativePrompt(input.agent, input.findings, input.totals);
    const r = await llm().json({ ...prompt, schema: narrativeSchema, maxTokens: 1500 });
    const summary = cleanReplyText(r.value.summary);
    const insights = input.findings.map((_, i) => cleanReplyText(r.value.insights.find((x) => x.finding === i)?.narrative ?? ''));
    checkReply('narrative', [summary, ...insights], prompt.user);
    return { summary, insights, generatedBy: `groq:${r.model}`, promptVersion: AGENT_PROMPT_VERSION };
  }

  async function answerWithLlm(input: {
    agent: AgentName;
    question: string;
    findings: Finding[];
    totals?: Record<string, number>;
  }): Promise<{ answer: string; generatedBy: string }> {
    const prompt = renderAskPrompt(input.agent, input.question, input.findings, input.totals);
    const r = await llm().json({ ...prompt, schema: answerSchema, maxTokens: 800 });
    const answer = cleanReplyText(r.value.answer);
    checkReply('answer', [answer], prompt.user);
    return { answer, generatedBy: `groq:${r.model}` };
  }

  async function recordAgentRun(run: repo.AgentRunRecord): Promise<void> {
    await repo.recordAgentRun(db, run);
  }

  async function recordReview(r: Parameters<typeof repo.recordReview>[1]): Promise<void> {
    await repo.recordReview(db, r);
  }

  return { narrateWithLlm, answerWithLlm, recordAgentRun, recordReview };
}
