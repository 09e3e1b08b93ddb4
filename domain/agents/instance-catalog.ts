/**
 * A small catalog of instance types the cost agent can recommend moving to. Pure, workflow-safe.
 *
 * PRICES ARE ILLUSTRATIVE LIST PRICES, NOT QUOTES. They are on-demand, per hour, in USD, modelled
 * on public cloud list prices of the mid-2020s, rounded, and provider-neutral (the names are our
 * own). Real prices differ by provider, region, contract, commitment and date: for real
 * recommendations, pass the catalog of the provider and region you actually buy from.
 *
 * Families: 'general' (balanced vCPU/memory), 'compute' (more vCPU per GiB), 'memory' (more GiB
 * per vCPU), 'gpu' (accelerated; `gpus` and `gpuMemoryGiB` are totals per instance).
 * A monthly cost is `hourlyUsd * HOURS_PER_MONTH`.
 */
import type { InstanceType } from './types.js';

/** Hours in a billing month, as cloud price lists count them (365 * 24 / 12). */
export const HOURS_PER_MONTH = 730;

export const INSTANCE_TYPES: InstanceType[] = [
  // ----- general purpose: 2-4 vCPU, 0.5-16 GiB ------------------------------------------------
  { name: 'gen.nano', family: 'general', hourlyUsd: 0.005, vcpus: 2, memoryGiB: 0.5, gpus: 0, gpuMemoryGiB: 0 }, //   $3.65 / month
  { name: 'gen.micro', family: 'general', hourlyUsd: 0.01, vcpus: 2, memoryGiB: 1, gpus: 0, gpuMemoryGiB: 0 }, //    $7.30 / month
  { name: 'gen.small', family: 'general', hourlyUsd: 0.02, vcpus: 2, memoryGiB: 2, gpus: 0, gpuMemoryGiB: 0 }, //   $14.60 / month
  { name: 'gen.medium', family: 'general', hourlyUsd: 0.04, vcpus: 2, memoryGiB: 4, gpus: 0, gpuMemoryGiB: 0 }, //  $29.20 / month
  // Listed at $52.00 a month, i.e. 52 / 730 ≈ $0.0712 an hour (the seed scenario's idle instance).
  { name: 'gen.large', family: 'general', hourlyUsd: 52 / HOURS_PER_MONTH, vcpus: 2, memoryGiB: 8, gpus: 0, gpuMemoryGiB: 0 },
  { name: 'gen.xlarge', family: 'general', hourlyUsd: 0.1424, vcpus: 4, memoryGiB: 16, gpus: 0, gpuMemoryGiB: 0 }, // $103.95 / month

  // ----- compute optimised: 2 GiB per vCPU ----------------------------------------------------
  { name: 'cpu.large', family: 'compute', hourlyUsd: 0.085, vcpus: 2, memoryGiB: 4, gpus: 0, gpuMemoryGiB: 0 }, //    $62.05 / month
  { name: 'cpu.xlarge', family: 'compute', hourlyUsd: 0.17, vcpus: 4, memoryGiB: 8, gpus: 0, gpuMemoryGiB: 0 }, //   $124.10 / month
  { name: 'cpu.2xlarge', family: 'compute', hourlyUsd: 0.34, vcpus: 8, memoryGiB: 16, gpus: 0, gpuMemoryGiB: 0 }, // $248.20 / month

  // ----- memory optimised: 8 GiB per vCPU -----------------------------------------------------
  { name: 'mem.large', family: 'memory', hourlyUsd: 0.126, vcpus: 2, memoryGiB: 16, gpus: 0, gpuMemoryGiB: 0 }, //    $91.98 / month
  { name: 'mem.xlarge', family: 'memory', hourlyUsd: 0.252, vcpus: 4, memoryGiB: 32, gpus: 0, gpuMemoryGiB: 0 }, //  $183.96 / month
  { name: 'mem.2xlarge', family: 'memory', hourlyUsd: 0.504, vcpus: 8, memoryGiB: 64, gpus: 0, gpuMemoryGiB: 0 }, // $367.92 / month

  // ----- GPU: name = gpu.<count>x<model>-<memory per GPU> ------------------------------------
  { name: 'gpu.1xt4-16g', family: 'gpu', hourlyUsd: 0.526, vcpus: 4, memoryGiB: 16, gpus: 1, gpuMemoryGiB: 16 }, //       $383.98 / month
  { name: 'gpu.1xl4-24g', family: 'gpu', hourlyUsd: 0.805, vcpus: 4, memoryGiB: 16, gpus: 1, gpuMemoryGiB: 24 }, //       $587.65 / month
  { name: 'gpu.1xa10g-24g', family: 'gpu', hourlyUsd: 1.006, vcpus: 4, memoryGiB: 16, gpus: 1, gpuMemoryGiB: 24 }, //     $734.38 / month
  { name: 'gpu.1xa100-80g', family: 'gpu', hourlyUsd: 3.67, vcpus: 12, memoryGiB: 170, gpus: 1, gpuMemoryGiB: 80 }, //   $2,679.10 / month
  { name: 'gpu.1xh100-80g', family: 'gpu', hourlyUsd: 6.88, vcpus: 26, memoryGiB: 225, gpus: 1, gpuMemoryGiB: 80 }, //   $5,022.40 / month
  { name: 'gpu.2xa100-80g', family: 'gpu', hourlyUsd: 7.34, vcpus: 24, memoryGiB: 340, gpus: 2, gpuMemoryGiB: 160 }, //  $5,358.20 / month
  { name: 'gpu.4xa100-80g', family: 'gpu', hourlyUsd: 14.68, vcpus: 48, memoryGiB: 680, gpus: 4, gpuMemoryGiB: 320 }, // $10,716.40 / month

  // ----- memory-optimised GPU hosts: more host memory per GPU, for memory-bound serving --------
  { name: 'gpumem.1xa100-80g', family: 'memory', hourlyUsd: 4.1, vcpus: 16, memoryGiB: 480, gpus: 1, gpuMemoryGiB: 80 }, //  $2,993.00 / month
  { name: 'gpumem.2xa100-80g', family: 'memory', hourlyUsd: 8.2, vcpus: 32, memoryGiB: 960, gpus: 2, gpuMemoryGiB: 160 }, // $5,986.00 / month
];

/** The catalog entry called `name`, if any. */
export function findInstanceType(catalog: readonly InstanceType[], name: string | undefined): InstanceType | undefined {
  if (!name) return undefined;
  return catalog.find((t) => t.name === name);
}
