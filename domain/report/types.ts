/**
 * What the deployment report shows: the data the CLI gathers from ClickHouse and PostgreSQL,
 * rendered by the pure functions of this folder. Fractions are in [0, 1]; times are ISO strings
 * or seconds since epoch (UTC) where said.
 */
import type { Check } from '../../common/types.js';
import type { Decision, Evidence, GateResult, Tolerances, VersionStats } from '../gate/types.js';

/** A model version's scored interactions of one check in one time bucket. */
export interface TrendPoint {
  model_version: string;
  check_name: Check;
  /** Start of the bucket, seconds since epoch (UTC). */
  t: number;
  n: number;
  /** Mean score of the bucket's interactions. */
  mean: number;
  /** Interactions with score >= 0.5 (hallucinated or toxic answers; for quality, not a flag). */
  flagged: number;
}

/** The baseline drawn as a band on the trends: its means and the tolerance around them. */
export interface BaselineBand {
  version: string;
  samples: number;
  stats: VersionStats;
  tolerances: Tolerances;
  /** Where the band comes from, in words ("the baseline of gate …", "computed 2025-…"). */
  source: string;
}

export interface ReportGate {
  gateId: string;
  baselineVersion: string;
  candidateVersion: string;
  decision: Decision;
  effectiveDecision: GateResult['effectiveDecision'];
  reason: string;
  decidedAt: string;
  rollback: string;
  evidence?: Evidence;
}

export interface VersionCoverage {
  version: string;
  /** Interactions stored. */
  stored: number;
  /** Interactions with a quality score of the report's judge. */
  scored: number;
}

export interface ReportFinding {
  agent: string;
  severity: string;
  subject: string;
  title: string;
  recommendation: string;
  monthlyUsd: number | null;
  annualUsd: number | null;
}

export interface ReportData {
  deployment: string;
  /** When the report was made (ISO). */
  generatedAt: string;
  window: { from: string; to: string; days: number };
  judge: string;
  promptVersions: Record<Check, string>;
  /** `versions`: how many model versions were scored in the window (the points follow at most a few of them). */
  trends: { bucketSeconds: number; points: TrendPoint[]; versions?: number };
  band?: BaselineBand;
  /** Newest first. */
  gates: ReportGate[];
  coverage: {
    /** Some of the deployment's versions: those charted and the most recently stored. */
    versions: VersionCoverage[];
    /** Over every version of the deployment: how many have stored interactions, and the sums. */
    totals?: { versions: number; stored: number; scored: number };
    lastCycle?: {
      finishedAt: string;
      status: string;
      note: string /** "started 3 h 10 min after it was due", when it began late. */;
      late?: string;
    };
  };
  review: { findings: ReportFinding[]; finishedAt?: string };
}
