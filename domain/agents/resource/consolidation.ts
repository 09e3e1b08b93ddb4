/**
 * The resource agent's 'consolidation' finding: lightly used hosts packed first-fit decreasing
 * into each other at the target utilisation, and the hosts that frees. Pure and workflow-safe: no
 * I/O, no clock, no randomness, no Node APIs.
 */
import type { Finding, InstanceType } from '../types.js';
import { fixed, formatUsd, percentPoints, round } from '../../../common/format.js';
import { HOURS_PER_MONTH } from '../instance-catalog.js';
import { compareText } from '../ordering.js';
import { confidenceFromCount } from '../series.js';
import { EPS, usd } from './catalog-match.js';
import type { HostStats, Summary } from './host-stats.js';
import { RESOURCE_THRESHOLDS as T } from './thresholds.js';

export function consolidation(hs: HostStats[]): Finding | undefined {
  const cands = hs.filter((h) => h.gpu !== undefined && h.n >= T.minPoints && h.s.gpus > 0 && h.gpu.mean < T.consolidationMean);
  if (cands.length < 2) return undefined;
  const load = (h: HostStats): number => (h.gpu as Summary).p95 * h.s.gpus;
  const price = (h: HostStats): number => h.type?.hourlyUsd ?? Infinity;
  const byName = (a: HostStats, b: HostStats): number => compareText(a.s.host, b.s.host);
  // Bins: the hosts themselves, bigger first, then cheaper first (keep cheap hosts, free dear ones).
  const bins = [...cands].sort((a, b) => b.s.gpus - a.s.gpus || price(a) - price(b) || byName(a, b));
  const items = [...cands].sort((a, b) => load(b) - load(a) || byName(a, b));
  const used = new Map<string, number>();
  const placement = new Map<string, string>();
  for (const item of items) {
    const w = load(item);
    const open = bins.filter((b) => used.has(b.s.host));
    const fitsIn = (b: HostStats): boolean => (used.get(b.s.host) ?? 0) + w <= b.s.gpus * T.targetUtil + EPS;
    const target = open.find(fitsIn) ?? bins.find((b) => !used.has(b.s.host) && fitsIn(b)) ?? item;
    used.set(target.s.host, (used.get(target.s.host) ?? 0) + w);
    placement.set(item.s.host, target.s.host);
  }
  const kept = bins.filter((b) => used.has(b.s.host));
  const freed = bins.filter((b) => !used.has(b.s.host)).sort(byName);
  if (freed.length === 0) return undefined;

  const totalLoad = cands.reduce((a, h) => a + load(h), 0);
  const evidence: Record<string, number | string> = {
    hosts_considered: cands.length,
    hosts_after: kept.length,
    hosts_to_free: freed.map((h) => h.s.host).join(','),
    gpus_to_free: freed.reduce((a, h) => a + h.s.gpus, 0),
    combined_p95_gpu_equivalents: round(totalLoad, 2),
    target_util_pct: percentPoints(T.targetUtil),
    placement: [...placement.entries()]
      .filter(([from, to]) => from !== to)
      .sort(([a], [b]) => compareText(a, b))
      .map(([from, to]) => `${from}→${to}`)
      .join(','),
    mean_gpu_util_pct: cands
      .map((h) => `${h.s.host}:${fixed(percentPoints((h.gpu as Summary).mean))}`)
      .sort()
      .join(','),
  };
  const f: Finding = {
    kind: 'consolidation',
    title: `Consolidate ${cands.length} lightly used hosts onto ${kept.length}: free ${freed.map((h) => h.s.host).join(', ')}`,
    severity: 'medium',
    subject: cands
      .map((h) => h.s.host)
      .sort()
      .join(','),
    evidence,
    recommendation:
      `${cands.length} hosts each run under ${fixed(percentPoints(T.consolidationMean))} % mean GPU; their combined p95 load is ` +
      `${fixed(totalLoad, 2)} GPU-equivalents, which fits on ${kept.map((h) => h.s.host).join(', ')} at ≤ ` +
      `${fixed(percentPoints(T.targetUtil))} % (move ${evidence.placement || 'nothing'}). Free ${freed.map((h) => h.s.host).join(', ')} ` +
      'once the moved workloads are confirmed to fit side by side in GPU memory (smaller models, MIG/MPS, or merged replicas).',
    confidence: confidenceFromCount(Math.min(...cands.map((h) => h.n)), T.fullConfidencePoints),
  };
  if (freed.every((h) => h.type !== undefined)) {
    const monthly = usd(freed.reduce((a, h) => a + (h.type as InstanceType).hourlyUsd, 0) * HOURS_PER_MONTH);
    evidence.freed_hourly_usd = round(
      freed.reduce((a, h) => a + (h.type as InstanceType).hourlyUsd, 0),
      4,
    );
    f.monthlySavingUsd = monthly;
    f.annualSavingUsd = usd(monthly * 12);
    f.recommendation += ` Saving ${formatUsd(monthly)}/month (${formatUsd(monthly * 12)}/year).`;
  }
  return f;
}
