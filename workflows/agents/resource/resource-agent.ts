/** The resource agent (LLM integration point 3) as a workflow: GPU and host metrics → findings → narrative → PostgreSQL. */
import { patched } from '@temporalio/workflow';
import { legacyResource } from '../legacy.js';
import { analysisActs, FINDINGS_IN_ACTIVITIES, runAgent, type AgentInput, type AgentRunResult } from '../run-agent.js';

export async function resourceAgent(input: AgentInput = {}): Promise<AgentRunResult> {
  return runAgent('resource', input, (w) => (patched(FINDINGS_IN_ACTIVITIES) ? analysisActs.analyseResource(w) : legacyResource(w)));
}
