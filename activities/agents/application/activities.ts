/**
 * The application agent's activities (LLM integration point 4): answer quality per deployment and
 * version with the gate's statistics, and the explanation of a gate decision.
 */
import { raise } from '../../../common/failures.js';
import { ID_PATTERN, type Check } from '../../../common/types.js';
import {
  explanationFromReply,
  explanationSchema,
  renderExplanationPrompt,
  unsupportedNumbers,
} from '../../../domain/agents/application/explain.js';
import { cleanReplyText } from '../../../domain/agents/narrative.js';
import { boundAnalysis } from '../../../domain/agents/bounded.js';
import { applicationFindings, type DeploymentQuality } from '../../../domain/agents/application/findings.js';
import type { AgentAnalysis, AgentWindow } from '../../../domain/agents/types.js';
import { toVersionStats } from '../../../domain/gate/baseline.js';
import type { Decision, Evidence, Explanation } from '../../../domain/gate/types.js';
import type { ActivityDeps } from '../../deps.js';
import { decisionsSince } from '../../storage/postgres/gates.js';
import { heartbeat } from '../../heartbeat.js';
import { noData } from '../metrics.js';
import { checkReply } from '../narrative.js';

/** Deployments the pre-1.1 `gatherApplication` activity returned at most (kept for workflows started before). */
const LEGACY_MAX_DEPLOYMENTS = 100;

export type ApplicationWindow = AgentWindow & { judge: string; promptVersions: Record<Check, string> };

export function createApplicationActivities(deps: ActivityDeps) {
  const { ch, db } = deps;

  /** Quality statistics of every deployment and version scored in the window, with its gate decisions. */
  async function applicationInputs(
    w: ApplicationWindow,
  ): Promise<{ deployments: DeploymentQuality[]; dataPoints: number; warnings: string[] }> {
    const versions = await ch.scoredVersions(w.from, w.to);
    const out: DeploymentQuality[] = [];
    const valid = versions.filter((x) => ID_PATTERN.test(x.deployment) && ID_PATTERN.test(x.model_version));
    for (const [i, v] of valid.entries()) {
      heartbeat({ agent: 'application', version: i + 1, versions: valid.length, deployment: v.deployment });
      let d = out.find((x) => x.deployment === v.deployment);
      if (!d) {
        d = { deployment: v.deployment, versions: [], gates: await decisionsSince(db, v.deployment, w.from) };
        out.push(d);
      }
      const agg = await ch.versionAggregates({
        deployment: v.deployment,
        version: v.model_version,
        judge: w.judge,
        promptVersions: w.promptVersions,
        from: w.from,
        to: new Date(Date.parse(w.to) + 1000).toISOString(),
      });
      d.versions.push({ version: v.model_version, stats: toVersionStats(agg), lastTs: new Date(v.last_ts * 1000).toISOString() });
    }
    if (!out.length) throw noData('application', w, [], 'scored interactions');
    return { deployments: out, dataPoints: versions.length, warnings: [] };
  }

  /**
   * The inputs of the findings, as workflows started before findings moved into activities expect
   * them (bounded: the first LEGACY_MAX_DEPLOYMENTS deployments). New runs use `analyseApplication`.
   */
  async function gatherApplication(
    w: ApplicationWindow,
  ): Promise<{ deployments: DeploymentQuality[]; dataPoints: number; warnings: string[] }> {
    const g = await applicationInputs(w);
    return { ...g, deployments: g.deployments.slice(0, LEGACY_MAX_DEPLOYMENTS) };
  }

  /** Findings of every deployment scored in the window (the analysis is bounded, not the deployments read). */
  async function analyseApplication(w: ApplicationWindow): Promise<AgentAnalysis> {
    const g = await applicationInputs(w);
    return boundAnalysis({ findings: applicationFindings(g.deployments), dataPoints: g.dataPoints, warnings: g.warnings });
  }

  /** The explanation of a gate decision, written by the LLM from the numbers only. */
  async function explainWithLlm(input: { decision: Decision; evidence?: Evidence; reason: string }): Promise<Explanation> {
    if (!deps.llm) raise('LlmDisabled', 'no LLM is configured on this worker');
    const prompt = renderExplanationPrompt(input.decision, input.evidence, input.reason);
    const r = await deps.llm.json({ ...prompt, schema: explanationSchema, maxTokens: 800 });
    const reply = { summary: cleanReplyText(r.value.summary), details: r.value.details.map(cleanReplyText).filter((d) => d !== '') };
    const invented = unsupportedNumbers(reply, prompt);
    // A narrative must cite only the numbers it was given; retried, then the template is used.
    if (invented.length)
      raise('LlmInvalidReply', `the explanation cites numbers that are not in the evidence: ${invented.slice(0, 5).join(', ')}`);
    checkReply('explanation', [reply.summary, ...reply.details], prompt.user);
    return explanationFromReply(reply, r.model);
  }

  return { gatherApplication, analyseApplication, explainWithLlm };
}
