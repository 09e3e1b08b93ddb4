/**
 * The resource agent's sizing findings, per host: 'bottleneck' (the binding resource, with the
 * memory- or compute-optimised type to move to) and 'scale-up' / 'scale-down' (the GPUs needed
 * at the target utilisation and the cheapest type that fits). Pure and workflow-safe: no I/O, no
 * clock, no randomness, no Node APIs.
 */
import type { Finding, InstanceType } from '../types.js';
import { fixed, formatUsd, percentPoints } from '../../../common/format.js';
import { HOURS_PER_MONTH } from '../instance-catalog.js';
import { confidenceFromCount } from '../series.js';
import { cheapest, describeType, EPS, moveMoney, needsEvidence, needsOf } from './catalog-match.js';
import { type HostStats, utilEvidence } from './host-stats.js';
import { RESOURCE_THRESHOLDS as T } from './thresholds.js';

export function bottleneck(h: HostStats, catalog: readonly InstanceType[]): Finding | undefined {
  const gpu = h.gpu?.mean;
  const mem = h.mem?.mean;
  const cpu = h.cpu?.mean;
  const others = (xs: Array<number | undefined>): number => Math.max(0, ...xs.filter((x): x is number => x !== undefined));
  let bound: 'memory' | 'cpu' | 'gpu-compute' | 'gpu-memory-bandwidth' | 'gpu' | undefined;
  if (mem !== undefined && mem >= T.memoryBoundMin && mem - others([gpu, cpu]) >= T.boundMargin) bound = 'memory';
  else if (cpu !== undefined && cpu >= T.cpuBoundMin && cpu - (gpu ?? 0) >= T.cpuOverGpu) bound = 'cpu';
  else if (gpu !== undefined && gpu >= T.gpuBoundMin && gpu - others([mem, cpu]) >= T.boundMargin) {
    if (h.sm && h.dram) bound = h.dram.mean >= T.dramBoundMin && h.dram.mean >= h.sm.mean ? 'gpu-memory-bandwidth' : 'gpu-compute';
    else bound = 'gpu';
  }
  if (!bound) return undefined;

  const s = h.s;
  const evidence = utilEvidence(h);
  evidence.bound = bound;
  evidence.memory_metric = 'host memUtil (fb share is evidence only)';
  const levels = `GPU ${gpu !== undefined ? `${fixed(percentPoints(gpu))} %` : 'n/a'}, memory ${mem !== undefined ? `${fixed(percentPoints(mem))} %` : 'n/a'}, CPU ${cpu !== undefined ? `${fixed(percentPoints(cpu))} %` : 'n/a'}`;
  const f: Finding = {
    kind: 'bottleneck',
    title: '',
    severity: 'medium',
    subject: s.host,
    evidence,
    recommendation: '',
    confidence: confidenceFromCount(h.n, T.fullConfidencePoints),
  };

  if (bound === 'memory' || bound === 'cpu') {
    const family = bound === 'memory' ? 'memory' : 'compute';
    const label = bound === 'memory' ? 'memory-optimised' : 'compute-optimised';
    f.title = `${s.host} is ${bound === 'memory' ? 'memory' : 'CPU'}-bound: ${levels}`;
    const why =
      bound === 'memory'
        ? `Host memory is the binding resource (${fixed(percentPoints(mem as number))} % mean, ${fixed(percentPoints(h.mem?.p95 ?? 0))} % p95) while the GPUs run at ${gpu !== undefined ? fixed(percentPoints(gpu)) : 'n/a'} %.`
        : `CPU is the binding resource (${fixed(percentPoints(cpu as number))} % mean vs GPU ${gpu !== undefined ? fixed(percentPoints(gpu)) : 'n/a'} %): tokenisation, detokenisation or the API server starve the GPUs.`;
    if (h.type) {
      const needs = needsOf(h, h.type);
      Object.assign(evidence, needsEvidence(needs));
      const next = cheapest(catalog, needs, { family, exclude: h.type.name });
      if (next) {
        const m = moveMoney(h.type, next);
        Object.assign(evidence, m.evidence);
        const change =
          m.monthly > 0
            ? `saving ${formatUsd(m.monthly)}/month (${formatUsd(m.annual)}/year: (${formatUsd(h.type.hourlyUsd)} − ${formatUsd(next.hourlyUsd)})/h × ${HOURS_PER_MONTH} h × 12)`
            : `costing ${formatUsd(-m.monthly)}/month more (${formatUsd(-m.annual)}/year)`;
        f.recommendation =
          `${why} Move from ${h.type.name} to the ${label} ${describeType(next)}, the cheapest catalog type that covers ` +
          `the p95 needs at ≤ ${fixed(percentPoints(T.targetUtil))} % (${fixed(needs.memoryGiB)} GiB memory, ${fixed(needs.vcpus)} vCPU, ` +
          `${fixed(needs.gpus, 2)} GPU-equivalents): ${change}.`;
        if (m.monthly > 0) {
          f.monthlySavingUsd = m.monthly;
          f.annualSavingUsd = m.annual;
        }
      } else {
        f.recommendation =
          `${why} No ${label} catalog type covers the p95 needs (${fixed(needs.memoryGiB)} GiB memory, ${fixed(needs.vcpus)} ` +
          `vCPU, ${fixed(needs.gpus, 2)} GPU-equivalents); ${bound === 'memory' ? 'reduce host memory use (smaller CPU swap space, --swap-space, fewer cached models)' : 'add API server processes or move pre-processing off this host'}.`;
      }
    } else {
      f.recommendation =
        `${why} Move to a ${label} instance type (family '${family}') that covers the p95 needs with 20 % headroom; ` +
        `the instance type is unknown, so no price is computed.`;
    }
    return f;
  }

  // GPU-bound.
  const gpuP95 = h.gpu?.p95 ?? 0;
  const gpusNeeded = Math.ceil((gpuP95 * s.gpus) / T.targetUtil - EPS);
  evidence.gpus_needed = gpusNeeded;
  if (bound === 'gpu-memory-bandwidth') {
    f.title = `${s.host} is GPU memory-bandwidth-bound: DRAM active ${fixed(percentPoints(h.dram?.mean ?? 0))} % vs SM active ${fixed(percentPoints(h.sm?.mean ?? 0))} %`;
    f.recommendation =
      'Decode is limited by reading weights and KV cache from GPU memory: quantise weights (FP8/INT8/AWQ) and the KV ' +
      'cache (--kv-cache-dtype fp8), batch more sequences per step so each weight read serves more tokens, or move to ' +
      `GPUs with more memory bandwidth. At p95 ${fixed(percentPoints(gpuP95))} % the host needs ${gpusNeeded} GPU(s) at ≤ ${fixed(percentPoints(T.targetUtil))} %.`;
  } else {
    f.title = `${s.host} is GPU compute-bound: ${levels}`;
    f.recommendation =
      `The GPUs are the binding resource${h.sm ? ` (SM active ${fixed(percentPoints(h.sm.mean))} %)` : ''}: add GPUs or replicas — at p95 ` +
      `${fixed(percentPoints(gpuP95))} % the host needs ${gpusNeeded} GPU(s) at ≤ ${fixed(percentPoints(T.targetUtil))} % — or lower the work per ` +
      'token (quantisation, smaller model, prefix caching).';
  }
  return f;
}

export function scaleAdvice(h: HostStats, catalog: readonly InstanceType[]): Finding | undefined {
  if (!h.gpu) return undefined;
  const s = h.s;
  const gpuP95 = h.gpu.p95;
  const memP95 = h.mem?.p95;
  const up = gpuP95 > T.scaleUpGpuP95 || (memP95 !== undefined && memP95 > T.scaleUpMemP95);
  const down = !up && gpuP95 < T.scaleDownP95;
  if (!up && !down) return undefined;

  const evidence = utilEvidence(h);
  const gpusNeeded = Math.max(1, Math.ceil((gpuP95 * s.gpus) / T.targetUtil - EPS));
  evidence.gpus_needed = gpusNeeded;
  const f: Finding = {
    kind: up ? 'scale-up' : 'scale-down',
    title: '',
    severity: up ? 'high' : 'medium',
    subject: s.host,
    evidence,
    recommendation: '',
    confidence: confidenceFromCount(h.gpu.n, T.fullConfidencePoints),
  };

  if (up) {
    const reasons: string[] = [];
    if (gpuP95 > T.scaleUpGpuP95) reasons.push(`p95 GPU ${fixed(percentPoints(gpuP95))} % > ${fixed(percentPoints(T.scaleUpGpuP95))} %`);
    if (memP95 !== undefined && memP95 > T.scaleUpMemP95)
      reasons.push(`p95 memory ${fixed(percentPoints(memP95))} % > ${fixed(percentPoints(T.scaleUpMemP95))} %`);
    f.title = `${s.host} needs more capacity: ${reasons.join(', ')}`;
    const extra = Math.max(0, gpusNeeded - s.gpus);
    let text =
      `${reasons.join('; ')}. At ≤ ${fixed(percentPoints(T.targetUtil))} % the load needs ${gpusNeeded} GPU(s) on this host's ` +
      `${s.gpus}${extra > 0 ? `: add ${extra} GPU-equivalent(s) (another replica, or a larger instance)` : ''}` +
      `${memP95 !== undefined && memP95 > T.scaleUpMemP95 ? `; host memory needs ≥ ${fixed((memP95 / T.targetUtil) * 100)} % of the current size` : ''}.`;
    if (h.type) {
      const needs = needsOf(h, h.type);
      Object.assign(evidence, needsEvidence(needs));
      const next = cheapest(catalog, needs, { exclude: h.type.name });
      if (next) {
        const m = moveMoney(h.type, next);
        Object.assign(evidence, m.evidence);
        text += ` Cheapest catalog type that fits: ${describeType(next)}, ${m.monthly >= 0 ? `saving ${formatUsd(m.monthly)}` : `${formatUsd(-m.monthly)} more`}/month.`;
        if (m.monthly > 0) {
          f.monthlySavingUsd = m.monthly;
          f.annualSavingUsd = m.annual;
        }
      } else {
        text += ' No single catalog type fits: add replicas on more hosts.';
      }
    }
    f.recommendation = text;
    return f;
  }

  f.title = `${s.host} is over-provisioned: p95 GPU ${fixed(percentPoints(gpuP95))} % < ${fixed(percentPoints(T.scaleDownP95))} %`;
  let text =
    `p95 GPU utilisation is ${fixed(percentPoints(gpuP95))} % on ${s.gpus} GPU(s): at ≤ ${fixed(percentPoints(T.targetUtil))} % the load needs ` +
    `${gpusNeeded}. ${gpusNeeded < s.gpus ? `Free ${s.gpus - gpusNeeded} GPU(s): fewer replicas or a smaller instance.` : 'Consolidate it with other lightly used hosts or move to a smaller GPU type.'}`;
  if (h.type) {
    const needs = needsOf(h, h.type);
    Object.assign(evidence, needsEvidence(needs));
    const next = cheapest(catalog, needs, { exclude: h.type.name, below: h.type.hourlyUsd });
    if (next) {
      const m = moveMoney(h.type, next);
      Object.assign(evidence, m.evidence);
      f.monthlySavingUsd = m.monthly;
      f.annualSavingUsd = m.annual;
      text += ` Cheapest catalog type that fits: ${describeType(next)}, saving ${formatUsd(m.monthly)}/month (${formatUsd(m.annual)}/year).`;
    } else {
      text += ' No cheaper catalog type fits the needs.';
    }
  }
  f.recommendation = text;
  return f;
}
