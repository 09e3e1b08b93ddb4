/**
 * Rows of the store's tables as they are written (JSONEachRow) and read back. Times are seconds
 * since the epoch (`unixSeconds`), which ClickHouse DateTime accepts independent of the server's
 * time zone.
 */
import type { Check } from '../../../common/types.js';

/** Seconds since epoch, as ClickHouse DateTime accepts it in JSONEachRow independent of server time zone. */
export const unixSeconds = (iso: string | Date): number => Math.floor((typeof iso === 'string' ? Date.parse(iso) : iso.getTime()) / 1000);

export interface InteractionRow {
  deployment: string;
  id: string;
  model_version: string;
  ts: number;
  prompt: string;
  response: string;
  context: string;
  has_context: number;
  metadata: string;
  source: string;
  cycle_id: string;
  ver: number;
}

export interface ScoreRow {
  deployment: string;
  model_version: string;
  interaction_id: string;
  interaction_ts: number;
  check_name: Check;
  prompt_version: string;
  judge: string;
  status: 'ok' | 'failed' | 'abstained';
  reason: string;
  score: number | null;
  coherence: number | null;
  relevance: number | null;
  accuracy: number | null;
  completeness: number | null;
  confidence: number | null;
  hate_speech: number | null;
  violence: number | null;
  profanity: number | null;
  reasoning: string;
  truncated: number;
  latency_ms: number;
  prompt_tokens: number;
  completion_tokens: number;
  attempts: number;
  scored_at: number;
  ver: number;
}

export interface CostUsageRow {
  charge_period_start: number;
  charge_period_end: number;
  billed_cost: number;
  effective_cost: number;
  resource_id: string;
  resource_type: string;
  service_name: string;
  region_id: string;
  sku_id: string;
  consumed_quantity: number;
  consumed_unit: string;
  tags: string;
  source: string;
  /** The collection that read the row; only a source's latest completed collection is read (cost_snapshots). */
  ver: number;
  /** The row's number in its collection (rows sharing every other column are distinct rows); 0 when not given. */
  seq?: number;
}

export interface MetricSampleRow {
  ts: number;
  source: string;
  metric: string;
  labels: string;
  value: number;
  ver: number;
}
