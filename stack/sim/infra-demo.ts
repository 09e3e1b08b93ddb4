/**
 * The demo's infrastructure: a generated FinOps FOCUS export for the last 30 days and three
 * simulated hosts serving real Prometheus text (vLLM + DCGM + node exporter) — the seed's three
 * situations — with a few hours of history backfilled through the real collection path.
 */
import { join } from 'node:path';
import type { createAgentActivities } from '../../activities/agents/index.js';
import { startExporterSim, type ExporterSim } from './exporter-sim.js';
import { upsertInfraSource } from '../../activities/storage/postgres/agents.js';
import type { Db } from '../../activities/storage/postgres/db.js';
import { writeFocusDataset } from './focus-generator.js';

export interface InfraDemo {
  sims: ExporterSim[];
  close(): Promise<void>;
}

const DAY = 86_400_000;

export async function startInfraDemo(o: {
  db: Db;
  dir: string;
  collect: ReturnType<typeof createAgentActivities>['collectInfraSource'];
  /** History to backfill, hours (default 6), at one scrape per `stepMinutes` (default 5). */
  hours?: number;
  stepMinutes?: number;
  /** Time the backfill ends (default now). */
  now?: number;
  /** Prefix of the metrics sources' ids (a demo run's own hosts). */
  prefix?: string;
}): Promise<InfraDemo> {
  const now = o.now ?? Date.now();
  const start = new Date(now - 30 * DAY).toISOString().slice(0, 10);
  const focusDir = join(o.dir, 'focus');
  writeFocusDataset(focusDir, { days: 30, seed: 1, start, scenario: 'seed' });
  await upsertInfraSource(o.db, 'focus-export', { kind: 'focus', path: focusDir } as { kind: string });

  const hours = o.hours ?? 6;
  const step = (o.stepMinutes ?? 5) * 60_000;
  let t = now - hours * 3_600_000;
  const clock = () => t;
  const hosts = [
    { id: 'chat-prod', scenario: 'kv-cache-regression' as const, resourceId: 'gpu-chat-prod-1', instanceType: 'gpu.1xa100-80g' },
    { id: 'gpu-batch-1', scenario: 'memory-bound' as const, resourceId: 'gpu-batch-1', instanceType: 'gpu.1xh100-80g' },
    { id: 'i-idle-reporting', scenario: 'idle' as const, resourceId: 'i-idle-reporting', instanceType: 'gen.large' },
  ];
  const sims: ExporterSim[] = [];
  try {
    for (const h of hosts) {
      const sim = await startExporterSim({
        scenario: h.scenario,
        seed: 7,
        clock,
        timestamps: true,
        hostname: h.id,
        gpus: h.scenario === 'idle' ? 1 : 2,
      });
      sims.push(sim);
      await upsertInfraSource(o.db, `${o.prefix ?? ''}${h.id}`, {
        kind: 'scrape',
        url: sim.metricsUrl,
        resourceId: h.resourceId,
        instanceType: h.instanceType,
      } as { kind: string });
    }
    const steps = Math.floor((hours * 3_600_000) / step);
    for (let i = 0; i <= steps; i++) {
      t = now - (steps - i) * step;
      // The model update with the longer context lands halfway; the idle host is busy 5 % of the time.
      sims[0]!.setPhase(i < steps / 2 ? 'before' : 'after');
      sims[2]!.setPhase(i % 20 === 0 ? 'busy' : 'idle');
      for (const h of hosts) {
        const r = await o.collect({ id: `${o.prefix ?? ''}${h.id}` });
        if (r.error) throw new Error(`backfill of ${h.id} failed: ${r.error}`);
      }
    }
  } catch (e) {
    await Promise.all(sims.map((s) => s.close()));
    throw e;
  }
  return { sims, close: async () => void (await Promise.all(sims.map((s) => s.close()))) };
}
