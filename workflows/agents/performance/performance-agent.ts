/** The performance agent (LLM integration point 2) as a workflow: vLLM metrics → findings → narrative → PostgreSQL. */
import { patched } from '@temporalio/workflow';
import { legacyPerformance } from '../legacy.js';
import { analysisActs, FINDINGS_IN_ACTIVITIES, runAgent, type AgentInput, type AgentRunResult } from '../run-agent.js';

export async function performanceAgent(input: AgentInput = {}): Promise<AgentRunResult> {
  return runAgent('performance', input, (w) =>
    patched(FINDINGS_IN_ACTIVITIES) ? analysisActs.analysePerformance(w) : legacyPerformance(w),
  );
}
