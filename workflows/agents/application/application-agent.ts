/**
 * The application agent (LLM integration point 4) as a review workflow: answer quality per
 * deployment and version with the gate's statistics → findings → narrative → PostgreSQL.
 * The explanation of a gate decision is its own workflow (explain-decision.ts).
 */
import { patched } from '@temporalio/workflow';
import { z } from 'zod';
import type { Explanation } from '../../../domain/gate/types.js';
import { legacyApplication } from '../legacy.js';
import { analysisActs, FINDINGS_IN_ACTIVITIES, runAgent, type AgentInput, type AgentRunResult } from '../run-agent.js';
import { explainDecision } from './explain-decision.js';

/**
 * The input that gates started before EXPLAIN_DECISION_WORKFLOW gave this workflow: such
 * children still running (or replayed) are explanations, handed to `explainDecision`.
 */
const startedAsExplanation = z.looseObject({
  task: z.literal('explain'),
  decision: z.enum(['APPROVE', 'REJECT', 'INCONCLUSIVE', 'ABORTED']),
  evidence: z.any().optional(),
  reason: z.string(),
  settings: z.any(),
});

export async function applicationAgent(input: AgentInput = {}): Promise<AgentRunResult | Explanation> {
  const earlier = startedAsExplanation.safeParse(input);
  if (earlier.success) return explainDecision(earlier.data);
  return runAgent('application', input, (w, s) =>
    patched(FINDINGS_IN_ACTIVITIES)
      ? analysisActs.analyseApplication({ ...w, judge: s.judge, promptVersions: s.promptVersions })
      : legacyApplication(w, s),
  );
}
