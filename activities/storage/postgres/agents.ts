/**
 * Infrastructure sources, agent runs with their recommendations, and reviews.
 *
 * Texts of a run (findings, evidence, narrative, error) come from imported data: NUL and lone
 * UTF-16 surrogates, which PostgreSQL refuses in text and jsonb, are replaced by U+FFFD before
 * storing, so one odd resource id or label cannot make a run unstorable on every retry.
 */
import type { AgentName, Finding } from '../../../domain/agents/types.js';
import type { Narrative } from '../../../domain/agents/narrative.js';
import { wellFormed } from '../../../domain/collector/record.js';
import { type Db, inTransaction } from './db.js';

export interface InfraSourceRow {
  id: string;
  config: unknown;
  lastCollectedTo?: string;
}

export async function upsertInfraSource(db: Db, id: string, config: { kind: string } & Record<string, unknown>): Promise<void> {
  await db.query(
    `INSERT INTO infra_sources (id, kind, config) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, config = EXCLUDED.config`,
    [id, config.kind, JSON.stringify(config)],
  );
}

type InfraSourceDbRow = { id: string; config: unknown; last_collected_to: Date | null };
const infraSourceRow = (row: InfraSourceDbRow): InfraSourceRow => ({
  id: row.id,
  config: row.config,
  lastCollectedTo: row.last_collected_to?.toISOString(),
});

export async function listInfraSources(db: Db): Promise<InfraSourceRow[]> {
  const r = await db.query<InfraSourceDbRow>('SELECT id, config, last_collected_to FROM infra_sources ORDER BY id');
  return r.rows.map(infraSourceRow);
}

export async function getInfraSource(db: Db, id: string): Promise<InfraSourceRow | undefined> {
  const r = await db.query<InfraSourceDbRow>('SELECT id, config, last_collected_to FROM infra_sources WHERE id = $1', [id]);
  return r.rows[0] && infraSourceRow(r.rows[0]);
}

/** Up to `limit` source ids after `after`, in id order: a collection pages through them. */
export async function listInfraSourceIds(db: Db, after: string | undefined, limit: number): Promise<string[]> {
  const r = await db.query<{ id: string }>(
    after === undefined
      ? 'SELECT id FROM infra_sources ORDER BY id LIMIT $1'
      : 'SELECT id FROM infra_sources WHERE id > $2 ORDER BY id LIMIT $1',
    after === undefined ? [limit] : [limit, after],
  );
  return r.rows.map((row) => row.id);
}

/**
 * Up to `limit` sources after `after`, in id order, with their stored configuration: a listing
 * pages through them rather than reading every configuration in one result.
 */
export async function listInfraSourcePage(db: Db, after: string | undefined, limit: number): Promise<InfraSourceRow[]> {
  const r = await db.query<InfraSourceDbRow>(
    after === undefined
      ? 'SELECT id, config, last_collected_to FROM infra_sources ORDER BY id LIMIT $1'
      : 'SELECT id, config, last_collected_to FROM infra_sources WHERE id > $2 ORDER BY id LIMIT $1',
    after === undefined ? [limit] : [limit, after],
  );
  return r.rows.map(infraSourceRow);
}

export async function markInfraCollected(db: Db, id: string, to: string): Promise<void> {
  await db.query('UPDATE infra_sources SET last_collected_to = $2 WHERE id = $1', [id, to]);
}

export async function deleteInfraSources(db: Db, idPrefix: string): Promise<void> {
  await db.query('DELETE FROM infra_sources WHERE id LIKE $1', [`${idPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`]);
}

/**
 * Unregister the source with exactly this id (`deleteInfraSources` takes a prefix: 'a' would also
 * take 'a_b'); the row it was, undefined when no source has the id.
 */
export async function deleteInfraSource(db: Db, id: string): Promise<InfraSourceRow | undefined> {
  const r = await db.query<InfraSourceDbRow>('DELETE FROM infra_sources WHERE id = $1 RETURNING id, config, last_collected_to', [id]);
  return r.rows[0] && infraSourceRow(r.rows[0]);
}

export interface AgentRunRecord {
  id: string;
  agent: AgentName;
  reviewId?: string;
  status: 'ok' | 'failed';
  error?: string;
  window: { from: string; to: string; stepSeconds: number };
  dataPoints: number;
  findings: Finding[];
  totals?: Record<string, number>;
  summary: string;
  narrative?: Narrative;
}

/** The text as PostgreSQL stores it: NUL and lone surrogates replaced by U+FFFD. */
export function storableText(s: string): string {
  return wellFormed(s).replace(/\u0000/g, '\ufffd');
}

/** A value with every string in it (keys included) made storable; other values unchanged. */
export function storable<T>(value: T): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return storableText(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [storableText(k), walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/** Upsert an agent run and replace its recommendations, in one transaction. */
export async function recordAgentRun(db: Db, input: AgentRunRecord): Promise<void> {
  const run = storable(input);
  await inTransaction(db, async (client) => {
    await client.query(
      `INSERT INTO agent_runs (id, agent, review_id, status, error, window_from, window_to, data_points, findings, totals,
         summary, narrative, narrative_by, prompt_version)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
       ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error, window_from = EXCLUDED.window_from,
         window_to = EXCLUDED.window_to, data_points = EXCLUDED.data_points, findings = EXCLUDED.findings,
         totals = EXCLUDED.totals, summary = EXCLUDED.summary, narrative = EXCLUDED.narrative,
         narrative_by = EXCLUDED.narrative_by, prompt_version = EXCLUDED.prompt_version, finished_at = now()`,
      [
        run.id,
        run.agent,
        run.reviewId ?? null,
        run.status,
        run.error ?? null,
        Number.isNaN(Date.parse(run.window.from)) ? null : run.window.from,
        Number.isNaN(Date.parse(run.window.to)) ? null : run.window.to,
        run.dataPoints,
        JSON.stringify(run.findings),
        run.totals ? JSON.stringify(run.totals) : null,
        run.summary,
        run.narrative ? JSON.stringify(run.narrative) : null,
        run.narrative?.generatedBy ?? null,
        run.narrative?.promptVersion ?? null,
      ],
    );
    await client.query('DELETE FROM recommendations WHERE run_id = $1', [run.id]);
    for (const [i, f] of run.findings.entries()) {
      await client.query(
        `INSERT INTO recommendations (run_id, idx, agent, kind, subject, severity, title, recommendation, narrative, evidence,
           monthly_saving_usd, annual_saving_usd, impact, confidence, narrative_by)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
        [
          run.id,
          i,
          run.agent,
          f.kind,
          f.subject,
          f.severity,
          f.title,
          f.recommendation,
          run.narrative?.insights[i] || null,
          JSON.stringify(f.evidence),
          f.monthlySavingUsd ?? null,
          f.annualSavingUsd ?? null,
          f.impact ?? null,
          f.confidence,
          run.narrative?.generatedBy ?? null,
        ],
      );
    }
  });
}

export async function recordReview(
  db: Db,
  r: { id: string; agents: AgentName[]; failed: AgentName[]; summary: string; summaryBy: string; errors: Record<string, string> },
): Promise<void> {
  await db.query(
    `INSERT INTO reviews (id, agents, failed_agents, summary, summary_by, errors) VALUES ($1,$2,$3,$4,$5,$6)
     ON CONFLICT (id) DO UPDATE SET agents = EXCLUDED.agents, failed_agents = EXCLUDED.failed_agents, summary = EXCLUDED.summary,
       summary_by = EXCLUDED.summary_by, errors = EXCLUDED.errors, finished_at = now()`,
    [r.id, r.agents, r.failed, storableText(r.summary), r.summaryBy, JSON.stringify(storable(r.errors))],
  );
}

export interface RecommendationRow {
  agent: string;
  severity: string;
  kind: string;
  subject: string;
  title: string;
  recommendation: string;
  narrative: string | null;
  monthly_saving_usd: number | null;
  annual_saving_usd: number | null;
  confidence: number;
  narrative_by: string | null;
  finished_at: Date;
  run_id: string;
}

/**
 * Recommendations of the latest successful run of each agent (or of one agent), largest saving
 * first. The agents are walked through the index of successful runs (one probe per agent and
 * one for its latest run), so the answer costs the same after 10 runs or 100,000.
 */
export async function latestRecommendations(db: Db, agent?: string): Promise<RecommendationRow[]> {
  const r = await db.query<RecommendationRow>(
    `WITH RECURSIVE agents(agent) AS (
       SELECT min(agent) FROM agent_runs WHERE status = 'ok' AND ($1::text IS NULL OR agent = $1)
       UNION ALL
       SELECT (SELECT min(x.agent) FROM agent_runs x WHERE x.status = 'ok' AND x.agent > agents.agent AND $1::text IS NULL)
       FROM agents WHERE agents.agent IS NOT NULL
     )
     SELECT r.agent, r.severity, r.kind, r.subject, r.title, r.recommendation, r.narrative, r.monthly_saving_usd,
            r.annual_saving_usd, r.confidence, r.narrative_by, a.finished_at, a.id AS run_id
     FROM agents
       CROSS JOIN LATERAL (SELECT x.id, x.finished_at FROM agent_runs x WHERE x.agent = agents.agent AND x.status = 'ok'
                           ORDER BY x.finished_at DESC LIMIT 1) a
       JOIN recommendations r ON r.run_id = a.id
     WHERE agents.agent IS NOT NULL
     ORDER BY r.annual_saving_usd DESC NULLS LAST, r.agent, r.idx`,
    [agent ?? null],
  );
  return r.rows;
}
