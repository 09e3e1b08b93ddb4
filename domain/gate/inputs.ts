/** Inputs of computeBaseline and abCompare (pure, workflow-safe). */
import { z } from 'zod';
import { DEFAULT_RULE, type Decision, type Explanation, type LookResult, type VersionStats } from './types.js';
import { CHECKS, idSchema } from '../../common/types.js';

const isoDate = (what: string) => z.string().refine((s) => !Number.isNaN(Date.parse(s)), { message: `${what} must be an ISO-8601 date` });

const windowFields = {
  /** The last N interactions of the version. */
  lastN: z.number().int().min(1).max(10_000_000).optional(),
  from: isoDate('from').optional(),
  to: isoDate('to').optional(),
};

export const baselineInputSchema = z
  .object({
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
  .object({
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
    minSamples: z.number().int().min(5).default(30),
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
