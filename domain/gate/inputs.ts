/** Inputs of computeBaseline and abCompare (pure, workflow-safe). */
import { z } from 'zod';
import {
  DECISIONS,
  DEFAULT_RULE,
  statSchema,
  versionStatsFields,
  type Decision,
  type Explanation,
  type LookResult,
  type VersionStats,
} from './types.js';
import { CHECKS, idSchema } from '../../common/types.js';
import { cycleSettingsSchema } from '../collector/collection.js';

const isoDate = (what: string) => z.string().refine((s) => !Number.isNaN(Date.parse(s)), { message: `${what} must be an ISO-8601 date` });

const windowFields = {
  /** The last N interactions of the version. */
  lastN: z.number().int().min(1).max(10_000_000).optional(),
  from: isoDate('from').optional(),
  to: isoDate('to').optional(),
};

export const baselineInputSchema = z
  .strictObject({
    deployment: idSchema('deployment'),
    version: idSchema('model version'),
    ...windowFields,
    /** Judge and prompt versions to aggregate (default: the worker's current judge). */
    judge: z.string().min(1).optional(),
    promptVersions: z.record(z.enum(CHECKS), z.string().min(1)).optional(),
    /** A baseline with fewer scored interactions is computed and returned, never stored. */
    minSamples: z.number().int().min(1).max(1_000_000).default(DEFAULT_RULE.minSamples),
  })
  .refine((b) => !b.from || !b.to || Date.parse(b.from) < Date.parse(b.to), { message: 'from must be before to', path: ['to'] });
export type BaselineInput = z.input<typeof baselineInputSchema>;

export const compareInputSchema = z
  .strictObject({
    deployment: idSchema('deployment'),
    versionA: idSchema('version A'),
    versionB: idSchema('version B'),
    ...windowFields,
    tolerances: z
      .object({
        qualityDrop: z.number().min(0).max(1),
        hallucinationRateIncrease: z.number().min(0).max(1),
        toxicityRateIncrease: z.number().min(0).max(1),
      })
      .partial()
      .default({}),
    minSamples: z.number().int().min(5).max(1_000_000).default(30),
    alpha: z.number().gt(0).max(0.2).default(0.02),
  })
  .refine((c) => c.versionA !== c.versionB, { message: 'the two versions must differ', path: ['versionB'] });
export type CompareInput = z.input<typeof compareInputSchema>;

export interface ComparisonResult {
  id: string;
  deployment: string;
  versionA: string;
  versionB: string;
  outcome: Decision;
  reason: string;
  look: LookResult;
  a: VersionStats;
  b: VersionStats;
  explanation: Explanation;
}

/** The evidence an explanation is written from, as the gate and the comparison give it. */
const evidenceSchema = z.looseObject({
  baseline: z.looseObject({ ...versionStatsFields, version: z.string(), judge: z.string(), promptVersion: z.string() }),
  candidate: z.looseObject({ ...versionStatsFields, version: z.string() }),
  look: z.looseObject({
    outcome: z.string(),
    samples: statSchema,
    reason: z.string(),
    metrics: z
      .array(
        z.looseObject({
          metric: z.string(),
          baseline: statSchema,
          candidate: statSchema,
          harm: statSchema,
          lower: statSchema,
          upper: statSchema,
          tolerance: statSchema,
          verdict: z.enum(['pass', 'fail', 'pending', 'unmeasured']),
        }),
      )
      .max(20),
  }),
  looks: statSchema,
  rule: z.looseObject({ test: z.string(), alpha: statSchema, minSamples: statSchema }),
});

/** The input of explainDecision (a child of the gate and of the comparison). */
export const explainInputSchema = z.object({
  decision: z.enum(DECISIONS),
  evidence: evidenceSchema.optional(),
  reason: z.string().max(100_000),
  settings: cycleSettingsSchema,
});
