/**
 * The deploy gate's inputs, evidence and outcomes (pure, workflow-safe).
 * Quality values are in [0, 1]; "points" are hundredths (a 5-point drop = 0.05).
 */
import { z } from 'zod';
import { durationSchema, httpUrlSchema, idSchema, plainTextSchema } from '../../common/types.js';
import { urlAddress } from '../../common/secrets.js';
import { cycleSettingsSchema } from '../collector/collection.js';

export const DECISIONS = ['APPROVE', 'REJECT', 'INCONCLUSIVE', 'ABORTED'] as const;
export type Decision = (typeof DECISIONS)[number];

/** Summary statistics of one sample of per-interaction values (scores in [0,1] or 0/1 flags). */
export interface SampleStats {
  n: number;
  mean: number;
  /** Sample standard deviation (n-1); 0 when n < 2. */
  sd: number;
  /** Interactions the judge declined to score for this check (it cannot measure them); not in n. */
  abstained?: number;
}

export type GateMetric = 'quality' | 'hallucination_rate' | 'toxicity_rate';

/** Tolerances as fractions: qualityDrop 0.05 = 5 points. */
export interface Tolerances {
  qualityDrop: number;
  hallucinationRateIncrease: number;
  toxicityRateIncrease: number;
}
export const DEFAULT_TOLERANCES: Tolerances = { qualityDrop: 0.05, hallucinationRateIncrease: 0.05, toxicityRateIncrease: 0.02 };

/** The three metrics of one version (baseline or candidate), from the same judge and prompt versions. */
export interface VersionStats {
  quality: SampleStats;
  hallucination_rate: SampleStats;
  toxicity_rate: SampleStats;
  /** Interactions of the version stored (scored or not: sampling, the LLM's budget); absent when not counted. */
  interactions?: number;
}

/** "180 of 4,000 interactions scored (4.5 %)" when fewer than all were scored, else ''. */
export function coverageText(v: VersionStats): string {
  const n = v.interactions;
  if (n === undefined || n <= v.quality.n) return '';
  const group = (x: number) => String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${group(v.quality.n)} of ${group(n)} interactions scored (${Math.round((v.quality.n / n) * 1000) / 10} %)`;
}

/** One metric's comparison at one look. `harm` = how much worse the candidate is (drop of quality, rise of a rate). */
export interface MetricVerdict {
  metric: GateMetric;
  baseline: number;
  candidate: number;
  harm: number;
  /** Anytime-valid confidence bounds of the harm. */
  lower: number;
  upper: number;
  tolerance: number;
  /**
   * 'fail': harm > tolerance with confidence; 'pass': harm < tolerance with confidence; 'pending':
   * cannot tell yet; 'unmeasured': the judge declines to measure it (it abstained on every
   * interaction of a side), so waiting does not help.
   */
  verdict: 'pass' | 'fail' | 'pending' | 'unmeasured';
  /** Scored interactions behind each side (absent in looks recorded before they were kept). */
  baselineN?: number;
  candidateN?: number;
}

export interface LookResult {
  /** INCONCLUSIVE: nothing failed, but a guard the operator did not allow to go unmeasured cannot be measured. */
  outcome: 'APPROVE' | 'REJECT' | 'CONTINUE' | 'INCONCLUSIVE';
  samples: number;
  metrics: MetricVerdict[];
  /** One sentence naming the metric(s), values, bound and threshold behind the outcome. */
  reason: string;
}

export interface DecisionRuleOptions {
  tolerances: Tolerances;
  minSamples: number;
  /** Overall error rate of the gate (false reject + false approve), split across sides and metrics. */
  alpha: number;
  /** Candidate sample size the confidence sequence is tuned to be tightest at. */
  plannedSamples: number;
  /** Guards that may go unmeasured (the judge abstains) without stopping an approval. */
  allowUnmeasured?: readonly GateMetric[];
  /**
   * Decide as gates did before PER_METRIC_RULE (quality sd floored at 0.01, no per-metric sample
   * minimum), so that a gate recorded before it replays its looks as they were.
   */
  legacy?: boolean;
}
export const DEFAULT_RULE: DecisionRuleOptions = {
  tolerances: DEFAULT_TOLERANCES,
  minSamples: 30,
  alpha: 0.02,
  plannedSamples: 200,
};

/** How long a deployer may take for one delivery attempt, in seconds (webhook default 30, command 300). */
const deployerTimeout = z
  .number()
  .int()
  .min(1, { message: 'deployer timeout must be at least 1 second' })
  .max(3600, { message: 'deployer timeout must be at most 3600 seconds' });

export const deployerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('dry-run') }),
  z.object({
    type: z.literal('webhook'),
    url: httpUrlSchema('webhook url'),
    timeoutSeconds: deployerTimeout.optional(),
    /** The full URL (with its credentials or query) is kept in PostgreSQL under the gate's id, out of history. */
    storedUrl: z.literal(true).optional(),
  }),
  z.object({
    type: z.literal('command'),
    /** argv, run without a shell; the deployment and versions arrive as environment variables. */
    argv: z
      .array(z.string().min(1, { message: 'the rollback program and its arguments must not be empty' }))
      .min(1, { message: 'command needs at least the program' }),
    timeoutSeconds: deployerTimeout.optional(),
  }),
]);
export type DeployerConfig = z.output<typeof deployerSchema>;

export const gateInputSchema = z
  .strictObject({
    deployment: idSchema('deployment'),
    baselineVersion: idSchema('baseline version'),
    candidateVersion: idSchema('candidate version'),
    tolerances: z
      .object({
        qualityDrop: z.number().min(0, { message: 'quality drop tolerance must not be negative' }).max(1),
        hallucinationRateIncrease: z.number().min(0, { message: 'hallucination-rate tolerance must not be negative' }).max(1),
        toxicityRateIncrease: z.number().min(0, { message: 'toxicity-rate tolerance must not be negative' }).max(1),
      })
      .partial()
      .default({}),
    minSamples: z.number().int().min(5).max(1_000_000).default(DEFAULT_RULE.minSamples),
    alpha: z.number().gt(0).max(0.2).default(DEFAULT_RULE.alpha),
    /** Longest the gate waits for enough candidate samples. */
    maxWait: durationSchema('maxWait', '1s', '30d').default('2h'),
    /** How often it re-checks (the collection interval by default). */
    checkEvery: durationSchema('checkEvery', '1s', '1d').default('15m'),
    /** What INCONCLUSIVE at the deadline means: reject (fail safe), approve, or hold for a human. */
    onInconclusive: z.enum(['reject', 'approve', 'hold']).default('reject'),
    /** With hold: how long to wait for a human before rejecting. */
    holdFor: durationSchema('holdFor', '1s', '30d').default('24h'),
    deployer: deployerSchema.default({ type: 'dry-run' }),
    /** Baseline window when it must be computed: the last N scored interactions of the baseline version. */
    baselineLastN: z.number().int().min(1).max(10_000_000).default(1000),
    /**
     * Checks whose guard may go unmeasured (the judge cannot measure them, e.g. hallucination
     * without a knowledge passage for the offline judge) without stopping an approval.
     */
    allowUnmeasured: z.array(z.enum(['hallucination', 'toxicity'])).default([]),
    /** Which collection task queue's judge defines comparable scores (defaults to the gate's own). */
    requestedBy: plainTextSchema('requestedBy', 200).optional(),
    /** Carried across continue-as-new; not for callers. */
    carry: z.lazy(() => gateCarrySchema).optional(),
  })
  .refine((g) => g.baselineVersion !== g.candidateVersion, {
    message: 'candidate version must differ from the baseline version',
    path: ['candidateVersion'],
  });
export type GateInput = z.input<typeof gateInputSchema>;
export type GateArgs = z.output<typeof gateInputSchema>;

export function resolvedTolerances(g: GateArgs): Tolerances {
  return { ...DEFAULT_TOLERANCES, ...g.tolerances };
}

/**
 * The parameters that define what a gate decides (defaults applied; a webhook URL without its
 * credentials or query), as one line: a CI re-run that attaches to an existing gate must ask
 * for the same.
 */
export function gateParams(g: GateArgs): string {
  const d = g.deployer;
  const deployer = d.type === 'webhook' ? `webhook ${maskedUrl(d.url)}` : d.type === 'command' ? `command ${d.argv[0]}` : 'dry-run';
  const t = resolvedTolerances(g);
  return [
    `baseline ${g.baselineVersion}`,
    `quality-drop ${t.qualityDrop * 100}`,
    `hallucination-increase ${t.hallucinationRateIncrease * 100}`,
    `toxicity-increase ${t.toxicityRateIncrease * 100}`,
    `min-samples ${g.minSamples}`,
    `alpha ${g.alpha}`,
    `max-wait ${g.maxWait}`,
    `check-every ${g.checkEvery}`,
    `on-inconclusive ${g.onInconclusive}`,
    ...(g.allowUnmeasured.length ? [`allow-unmeasured ${[...g.allowUnmeasured].sort().join(',')}`] : []),
    `rollback ${deployer}`,
  ].join(', ');
}

function maskedUrl(u: string): string {
  return urlAddress(u) ?? '(URL)';
}

/** The gate metrics of the checks an operator allows to go unmeasured. */
export function unmeasuredAllowed(checks: ReadonlyArray<'hallucination' | 'toxicity'>): GateMetric[] {
  return checks.map((c) => (c === 'hallucination' ? 'hallucination_rate' : 'toxicity_rate'));
}

const overrideFields = {
  action: z.enum(['approve', 'reject', 'abort']),
  reason: plainTextSchema('the reason', 2000, 'an override needs a reason'),
  by: plainTextSchema('who asked for it', 200, 'an override needs who asked for it'),
};
/** An override as the update and the CLI take it: any other field is refused. */
export const overrideSchema = z.strictObject(overrideFields);
/** An override as the signal takes it (a signal cannot be refused): other fields are dropped, never stored. */
export const overrideSignalSchema = z.object(overrideFields);
export type Override = z.output<typeof overrideSchema>;

/** One look of a gate as kept for charts: when, how many candidate samples, and each metric's bounds. */
export interface LookPoint {
  look: number;
  at: string;
  samples: number;
  outcome: LookResult['outcome'];
  metrics: Array<Pick<MetricVerdict, 'metric' | 'harm' | 'lower' | 'upper' | 'verdict'>>;
}

export interface Evidence {
  baseline: VersionStats & { version: string; judge: string; promptVersion: string; baselineId: string };
  candidate: VersionStats & { version: string };
  look: LookResult;
  looks: number;
  rule: { test: string; alpha: number; minSamples: number; tolerances: Tolerances };
  /**
   * The looks taken, oldest first, the last one included (when there are many, older ones are
   * thinned out: domain/gate/looks.ts). Absent in gates recorded before looks were kept.
   */
  history?: LookPoint[];
}

export interface Explanation {
  summary: string;
  details: string[];
  /** 'template' or 'groq:<model>'. */
  generatedBy: string;
  promptVersion: string;
}

export interface RollbackOutcome {
  status: 'delivered' | 'dry-run' | 'failed' | 'not-needed';
  deployer: DeployerConfig['type'];
  detail: string;
  idempotencyKey: string;
}

export interface GateResult {
  gateId: string;
  deployment: string;
  baselineVersion: string;
  candidateVersion: string;
  decision: Decision;
  /**
   * What INCONCLUSIVE turned into (onInconclusive) or what a human override set; INCONCLUSIVE
   * when there was no usable baseline: nothing is done on missing evidence (no rollback).
   */
  effectiveDecision: 'APPROVE' | 'REJECT' | 'ABORTED' | 'INCONCLUSIVE';
  reason: string;
  evidence?: Evidence;
  explanation?: Explanation;
  override?: Override & { at: string };
  rollback: RollbackOutcome;
}

export interface GateProgress {
  phase: 'baseline' | 'waiting' | 'deciding' | 'explaining' | 'rolling-back' | 'holding' | 'done';
  looks: number;
  samples: number;
  minSamples: number;
  lastLook?: LookResult;
  deadline: string;
  decision?: Decision;
}

/** An A/B comparison of two versions of a deployment (B measured against A). */
export interface Comparison {
  deployment: string;
  versionA: string;
  versionB: string;
  look: LookResult;
  a: VersionStats;
  b: VersionStats;
  explanation?: Explanation;
}

/** A statistic as it crosses JSON: null where it could not be computed (JSON has no NaN; such a statistic decides nothing). */
export const statSchema = z.number().nullable();
const sampleStatsSchema = z.looseObject({ n: statSchema, mean: statSchema, sd: statSchema });
/** VersionStats as a workflow input carries them. */
export const versionStatsFields = { quality: sampleStatsSchema, hallucination_rate: sampleStatsSchema, toxicity_rate: sampleStatsSchema };
const versionStatsSchema = z.looseObject(versionStatsFields);

/** What a gate hands to its next run across continue-as-new; checked like any input (a run may be started by hand with one). */
export const gateCarrySchema = z.object({
  startedAt: z.number().int().min(0),
  deadline: z.number().int().min(0),
  looks: z.number().int().min(0),
  settings: cycleSettingsSchema,
  baseline: z.looseObject({ id: z.string(), samples: z.number().min(0), stats: versionStatsSchema }),
  override: z.object({ ...overrideFields, at: z.string().max(100) }).optional(),
  history: z
    .array(z.looseObject({ look: z.number() }))
    .max(10_000)
    .optional(),
});
