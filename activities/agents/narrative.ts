/** What every agent shares: the LLM narrative of its findings, answers to questions, and the record of its run. */
import { raise } from '../../common/failures.js';
import {
  AGENT_PROMPT_VERSION,
  answerSchema,
  narrativeSchema,
  renderAskPrompt,
  renderNarrativePrompt,
  type Narrative,
} from '../../domain/agents/narrative.js';
import type { AgentName, Finding } from '../../domain/agents/types.js';
import { numbersNotInData } from '../../domain/judge/prompts.js';
import type { ActivityDeps } from '../deps.js';
import * as repo from '../storage/postgres/agents.js';

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
    const invented = numbersNotInData([r.value.summary, ...r.value.insights.map((i) => i.narrative)], prompt.user);
    if (invented.length)
      raise('LlmInvalidReply', `the narrative cites numbers that are not in the analysis: ${invented.slice(0, 5).join(', ')}`);
    const insights = input.findings.map((_, i) => r.value.insights.find((x) => x.finding === i)?.narrative ?? '');
    return { summary: r.value.summary, insights, generatedBy: `groq:${r.model}`, promptVersion: AGENT_PROMPT_VERSION };
  }

  async function answerWithLlm(input: {
    agent: AgentName;
    question: string;
    findings: Finding[];
    totals?: Record<string, number>;
  }): Promise<{ answer: string; generatedBy: string }> {
    const prompt = renderAskPrompt(input.agent, input.question, input.findings, input.totals);
    const r = await llm().json({ ...prompt, schema: answerSchema, maxTokens: 800 });
    const invented = numbersNotInData([r.value.answer], prompt.user);
    if (invented.length)
      raise('LlmInvalidReply', `the answer cites numbers that are not in the analysis: ${invented.slice(0, 5).join(', ')}`);
    return { answer: r.value.answer, generatedBy: `groq:${r.model}` };
  }

  async function recordAgentRun(run: repo.AgentRunRecord): Promise<void> {
    await repo.recordAgentRun(db, run);
  }

  async function recordReview(r: Parameters<typeof repo.recordReview>[1]): Promise<void> {
    await repo.recordReview(db, r);
  }

  return { narrateWithLlm, answerWithLlm, recordAgentRun, recordReview };
}
