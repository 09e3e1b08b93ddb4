/** The cost agent (LLM integration point 1) as a workflow: FOCUS cost data → findings → narrative → PostgreSQL. */
import { patched } from '@temporalio/workflow';
import { legacyCost } from '../legacy.js';
import { analysisActs, FINDINGS_IN_ACTIVITIES, runAgent, type AgentInput, type AgentRunResult } from '../run-agent.js';

export async function costAgent(input: AgentInput = {}): Promise<AgentRunResult> {
  return runAgent('cost', input, (w) => (patched(FINDINGS_IN_ACTIVITIES) ? analysisActs.analyseCost(w) : legacyCost(w)));
}
