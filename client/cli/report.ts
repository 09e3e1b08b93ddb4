/**
 * `optiinfra report --deployment D [--html FILE] [--days N]`: one self-contained HTML page of a
 * deployment (score trends per model version with the baseline band, each gate's confidence
 * bounds look by look against the tolerance, coverage, the review's savings), for people who
 * would rather look than read. The page loads nothing: it opens offline.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { judgeName, promptVersionsFor } from '../../activities/collector/activities.js';
import { latestRecommendations } from '../../activities/storage/postgres/agents.js';
import { lastCycle } from '../../activities/storage/postgres/collection-runs.js';
import { latenessNote } from '../../domain/collector/collection.js';
import { getDeployment } from '../../activities/storage/postgres/deployments.js';
import { baselinesOf, findBaseline, gateRecords } from '../../activities/storage/postgres/gates.js';
import { MAX_TREND_VERSIONS } from '../../activities/storage/clickhouse/score-queries.js';
import type { Config } from '../../common/config.js';
import type { Check } from '../../common/types.js';
import { DEFAULT_TOLERANCES } from '../../domain/gate/types.js';
import { renderReportPage } from '../../domain/report/page.js';
import type { BaselineBand, ReportData, ReportGate } from '../../domain/report/types.js';
import { defaultHome } from '../../stack/paths.js';
import type { Stores } from '../runtime.js';
import { idArg, intArg, UsageError } from './args.js';
import { withStores } from './connect.js';
import { printJson } from './format.js';
import { most } from '../../common/format.js';

/** Days of scores and gates a report covers by default. */
export const DEFAULT_REPORT_DAYS = 7;

/** Most model versions a report charts (and lists in its coverage besides the baseline's). */
export const MAX_REPORT_VERSIONS = MAX_TREND_VERSIONS;

/**
 * The report's data from ClickHouse and PostgreSQL. Scores are those of one judge and its
 * prompt versions: the latest gate's baseline's, else the latest baseline's, else this
 * configuration's.
 */
export async function gatherReport(
  stores: Stores,
  config: Config,
  o: { deployment: string; days?: number; now?: Date },
): Promise<ReportData> {
  const { ch, db } = stores;
  if (!(await getDeployment(db, o.deployment))) {
    throw new UsageError(
      `deployment '${o.deployment}' is not registered: add it with 'optiinfra deployment add ${o.deployment} --source-url URL'`,
    );
  }
  const days = o.days ?? DEFAULT_REPORT_DAYS;
  const now = o.now ?? new Date();
  const to = new Date(Math.ceil(now.getTime() / 1000) * 1000 + 1000).toISOString();
  const from = new Date(now.getTime() - days * 86_400_000).toISOString();

  const records = await gateRecords(db, o.deployment, { since: from, limit: 50 });
  const gated = records.find((g) => g.evidence);
  const gateBaseline = gated?.evidence ? ((await findBaseline(db, gated.evidence.baseline.baselineId)) ?? undefined) : undefined;
  const latestBaseline = gated?.evidence ? undefined : (await baselinesOf(db, o.deployment, 1))[0];

  let judge: string;
  let promptVersions: Record<Check, string>;
  let band: BaselineBand | undefined;
  if (gated?.evidence) {
    const ev = gated.evidence;
    judge = ev.baseline.judge;
    promptVersions = gateBaseline?.promptVersions ?? promptVersionsFor(judge, config.llm.judgeMode);
    band = {
      version: ev.baseline.version,
      samples: ev.baseline.quality.n,
      stats: { quality: ev.baseline.quality, hallucination_rate: ev.baseline.hallucination_rate, toxicity_rate: ev.baseline.toxicity_rate },
      tolerances: ev.rule.tolerances,
      source: `the baseline of the latest gate, with its tolerances`,
    };
  } else if (latestBaseline) {
    const b = latestBaseline;
    judge = b.judge;
    promptVersions = b.promptVersions;
    band = {
      version: b.version,
      samples: b.samples,
      stats: b.stats,
      tolerances: DEFAULT_TOLERANCES,
      source: `computed ${b.computedAt?.slice(0, 19).replace('T', ' ') ?? ''} UTC, with the default tolerances`,
    };
  } else {
    judge = judgeName(config);
    promptVersions = promptVersionsFor(judge, config.llm.judgeMode);
  }

  // Bounded however many versions the deployment had: the trends follow at most
  // MAX_REPORT_VERSIONS of them, coverage lists those and the most recently stored ones, and the
  // totals over every version are summed by ClickHouse.
  const trends = await ch.scoreTrends({
    deployment: o.deployment,
    judge,
    promptVersions,
    from,
    to,
    maxVersions: MAX_REPORT_VERSIONS,
    ...(band ? { keep: band.version } : {}),
  });
  const charted = [...new Set(trends.points.map((p) => p.model_version))];
  const coverage = await ch.versionCoverage({
    deployment: o.deployment,
    judge,
    keep: band ? [band.version, ...charted] : charted,
    limit: MAX_REPORT_VERSIONS,
  });
  const cycle = await lastCycle(db, o.deployment);
  const recs = await latestRecommendations(db);

  const gates: ReportGate[] = records.map((g) => ({
    gateId: g.gateId,
    baselineVersion: g.baselineVersion,
    candidateVersion: g.candidateVersion,
    decision: g.decision,
    effectiveDecision: g.effectiveDecision,
    reason: g.reason,
    decidedAt: g.decidedAt,
    rollback: g.rollback?.status ?? 'not-needed',
    ...(g.evidence ? { evidence: g.evidence } : {}),
  }));
  return {
    deployment: o.deployment,
    generatedAt: now.toISOString(),
    window: { from, to, days },
    judge,
    promptVersions,
    trends,
    ...(band ? { band } : {}),
    gates,
    coverage: {
      versions: coverage.versions,
      totals: coverage.total,
      ...(cycle
        ? {
            lastCycle: {
              finishedAt: new Date(cycle.finished_at).toISOString(),
              status: cycle.status,
              note: cycle.coverage_note ?? '',
              ...(latenessNote(cycle.scheduled_at, cycle.started_at) ? { late: latenessNote(cycle.scheduled_at, cycle.started_at) } : {}),
            },
          }
        : {}),
    },
    review: {
      findings: recs.map((r) => ({
        agent: r.agent,
        severity: r.severity,
        subject: r.subject,
        title: r.title,
        recommendation: r.recommendation,
        monthlyUsd: r.monthly_saving_usd === null ? null : Number(r.monthly_saving_usd),
        annualUsd: r.annual_saving_usd === null ? null : Number(r.annual_saving_usd),
      })),
      ...(recs.length ? { finishedAt: new Date(most(recs.map((r) => new Date(r.finished_at).getTime()))).toISOString() } : {}),
    },
  };
}

/** Where a report goes when no file is given: <stack home>/reports/<deployment>-<UTC time>.html. */
export function defaultReportPath(deployment: string, at: Date, home = defaultHome()): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return join(home, 'reports', `${deployment.replace(/[^A-Za-z0-9._-]/g, '_')}-${stamp}.html`);
}

/** Gather the report and write its page; returns the page's absolute path. */
export async function writeReportPage(
  stores: Stores,
  config: Config,
  o: { deployment: string; days?: number; html?: string; now?: Date },
): Promise<string> {
  const data = await gatherReport(stores, config, o);
  const file = resolve(o.html ?? defaultReportPath(o.deployment, new Date(data.generatedAt)));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, renderReportPage(data));
  return file;
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description(
      "an HTML page of a deployment: score trends per model version with the baseline band, each gate's bounds per look, coverage, the review's savings",
    )
    .requiredOption('--deployment <id>', 'deployment id', idArg('deployment id'))
    .option('--html <file>', 'where to write the page (default: <stack home>/reports/<deployment>-<time>.html)')
    .option('--days <n>', `days of scores and gates to show (default ${DEFAULT_REPORT_DAYS})`, intArg('--days', 1, 366))
    .option('--json', "print the report's data instead of writing the page")
    .action(async (o: { deployment: string; html?: string; days?: number; json?: boolean }) =>
      withStores(async (stores, config) => {
        if (o.json) return printJson(await gatherReport(stores, config, o));
        const file = await writeReportPage(stores, config, o);
        console.log(`report written to ${file}`);
      }),
    );
}
