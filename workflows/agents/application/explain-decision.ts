/**
 * The application agent's explanation of a gate decision (LLM integration point 4), as its own
 * workflow: a child of the gate and of the A/B comparison. The LLM writes it from the numbers
 * only; without an LLM, or when its narrative is unusable, the template is used.
 */
import { executeChild, patched, proxyActivities } from '@temporalio/workflow';
import type { AgentActivities } from '../../../activities/agents/index.js';
import { raise, rootCause } from '../../../common/failures.js';
import { formatZodError } from '../../../common/types.js';
import { explainInputSchema } from '../../../domain/gate/inputs.js';
import type { CycleSettings } from '../../../domain/collector/collection.js';
import { templateExplanation } from '../../../domain/agents/application/explain.js';
import type { Decision, Evidence, Explanation } from '../../../domain/gate/types.js';
import { llmOptions } from '../../options.js';

export interface ExplainDecisionInput {
  decision: Decision;
  evidence?: Evidence;
  reason: string;
  settings: CycleSettings;
}

/**
 * Patch id: from this change on, the gate and the comparison start `explainDecision`; histories
 * recorded before it started `applicationAgent` with a `task: 'explain'` input and replay so.
 */
export const EXPLAIN_DECISION_WORKFLOW = 'explain-decision-workflow';

export async function explainDecision(raw: ExplainDecisionInput): Promise<Explanation> {
  const parsed = explainInputSchema.safeParse(raw);
  if (!parsed.success) raise('InvalidInput', formatZodError(parsed.error));
  // Checked by the schema; the evidence is the gate's own type.
  const input = raw;
  const template = templateExplanation(input.decision, input.evidence, input.reason);
  if (input.settings.judge === 'offline') return template;
  try {
    return await proxyActivities<AgentActivities>(llmOptions(input.settings)).explainWithLlm({
      decision: input.decision,
      evidence: input.evidence,
      reason: input.reason,
    });
  } catch (e) {
    return {
      ...template,
      details: [...template.details, `The LLM narrative was unavailable (${rootCause(e).message}); this text is the template.`],
    };
  }
}

/**
 * Start the explanation as a child of the calling workflow (the gate or the comparison) and wait
 * for it. Histories from before EXPLAIN_DECISION_WORKFLOW replay their `applicationAgent` child.
 */
export async function explainChild(
  input: ExplainDecisionInput,
  opts: { workflowId: string; staticSummary?: string },
): Promise<Explanation> {
  if (patched(EXPLAIN_DECISION_WORKFLOW)) return executeChild(explainDecision, { ...opts, args: [input] });
  return executeChild<(i: ExplainDecisionInput & { task: 'explain' }) => Promise<Explanation>>('applicationAgent', {
    ...opts,
    args: [{ task: 'explain', ...input }],
  });
}
