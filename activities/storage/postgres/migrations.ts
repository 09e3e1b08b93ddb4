/** PostgreSQL schema as numbered migrations, applied once each, in order (see `migrate` in db.ts). */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'deployments, cursors and collection runs',
    sql: `
      CREATE TABLE deployments (
        id text PRIMARY KEY,
        source jsonb NOT NULL,
        sample_rate double precision NOT NULL DEFAULT 1 CHECK (sample_rate > 0 AND sample_rate <= 1),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE collection_cursors (
        deployment text PRIMARY KEY REFERENCES deployments(id) ON DELETE CASCADE,
        cursor text,
        cycle_id text,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE collection_runs (
        cycle_id text PRIMARY KEY,
        deployment text NOT NULL,
        scheduled_at timestamptz,
        finished_at timestamptz NOT NULL DEFAULT now(),
        pages int NOT NULL,
        fetched int NOT NULL,
        stored int NOT NULL,
        bad int NOT NULL,
        sampled int NOT NULL,
        scored int NOT NULL,
        failed int NOT NULL,
        skipped int NOT NULL,
        judge text NOT NULL,
        model_versions text[] NOT NULL,
        bad_samples jsonb NOT NULL DEFAULT '[]',
        failure_samples jsonb NOT NULL DEFAULT '[]',
        llm_prompt_tokens bigint NOT NULL DEFAULT 0,
        llm_completion_tokens bigint NOT NULL DEFAULT 0
      );
      CREATE INDEX collection_runs_deployment ON collection_runs (deployment, finished_at DESC);
    `,
  },
  {
    version: 2,
    name: 'baselines, gate decisions, rollbacks, comparisons',
    sql: `
      CREATE TABLE baselines (
        id text PRIMARY KEY,
        deployment text NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
        model_version text NOT NULL,
        judge text NOT NULL,
        prompt_versions jsonb NOT NULL,
        window_spec jsonb NOT NULL,
        window_from timestamptz,
        window_to timestamptz,
        samples int NOT NULL,
        stats jsonb NOT NULL,
        dimensions jsonb NOT NULL,
        workflow_id text NOT NULL,
        computed_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX baselines_lookup ON baselines (deployment, model_version, judge);
      CREATE TABLE gate_decisions (
        gate_id text PRIMARY KEY,
        run_id text NOT NULL,
        deployment text NOT NULL,
        baseline_version text NOT NULL,
        candidate_version text NOT NULL,
        decision text NOT NULL,
        effective_decision text NOT NULL,
        reason text NOT NULL,
        evidence jsonb,
        explanation jsonb,
        override jsonb,
        rollback jsonb NOT NULL,
        input jsonb NOT NULL,
        started_at timestamptz NOT NULL,
        decided_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX gate_decisions_deployment ON gate_decisions (deployment, decided_at DESC);
      CREATE TABLE rollbacks (
        idempotency_key text PRIMARY KEY,
        gate_id text NOT NULL,
        deployment text NOT NULL,
        from_version text NOT NULL,
        to_version text NOT NULL,
        deployer text NOT NULL,
        status text NOT NULL,
        detail text NOT NULL DEFAULT '',
        attempts int NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz
      );
      CREATE TABLE comparisons (
        id text PRIMARY KEY,
        deployment text NOT NULL,
        version_a text NOT NULL,
        version_b text NOT NULL,
        outcome text NOT NULL,
        reason text NOT NULL,
        look jsonb NOT NULL,
        stats_a jsonb NOT NULL,
        stats_b jsonb NOT NULL,
        explanation jsonb,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 3,
    name: 'infrastructure sources, agent runs, recommendations, reviews',
    sql: `
      CREATE TABLE infra_sources (
        id text PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('focus', 'scrape', 'prometheus')),
        config jsonb NOT NULL,
        last_collected_to timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE agent_runs (
        id text PRIMARY KEY,
        agent text NOT NULL,
        review_id text,
        status text NOT NULL CHECK (status IN ('ok', 'failed')),
        error text,
        window_from timestamptz,
        window_to timestamptz,
        data_points int NOT NULL DEFAULT 0,
        findings jsonb NOT NULL DEFAULT '[]',
        totals jsonb,
        summary text NOT NULL DEFAULT '',
        narrative jsonb,
        narrative_by text,
        prompt_version text,
        finished_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX agent_runs_agent ON agent_runs (agent, finished_at DESC);
      CREATE TABLE recommendations (
        run_id text NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE,
        idx int NOT NULL,
        agent text NOT NULL,
        kind text NOT NULL,
        subject text NOT NULL,
        severity text NOT NULL,
        title text NOT NULL,
        recommendation text NOT NULL,
        narrative text,
        evidence jsonb NOT NULL,
        monthly_saving_usd double precision,
        annual_saving_usd double precision,
        impact text,
        confidence double precision NOT NULL,
        narrative_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, idx)
      );
      CREATE TABLE reviews (
        id text PRIMARY KEY,
        agents text[] NOT NULL,
        failed_agents text[] NOT NULL,
        summary text NOT NULL,
        summary_by text NOT NULL,
        errors jsonb NOT NULL DEFAULT '{}',
        finished_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 4,
    name: 'one cycle per deployment at a time; what a cycle did in detail, and how it ended',
    sql: `
      ALTER TABLE collection_cursors ADD COLUMN running_cycle text;
      ALTER TABLE collection_cursors ADD COLUMN lease_until timestamptz;
      ALTER TABLE collection_runs ADD COLUMN status text NOT NULL DEFAULT 'ok';
      ALTER TABLE collection_runs ADD COLUMN error text;
      ALTER TABLE collection_runs ADD COLUMN conflicts int NOT NULL DEFAULT 0;
      ALTER TABLE collection_runs ADD COLUMN abstained int NOT NULL DEFAULT 0;
      ALTER TABLE collection_runs ADD COLUMN unscored_for_budget int NOT NULL DEFAULT 0;
      ALTER TABLE collection_runs ADD COLUMN coverage_note text NOT NULL DEFAULT '';
      ALTER TABLE collection_runs ADD COLUMN llm_calls bigint NOT NULL DEFAULT 0;
      ALTER TABLE collection_runs ADD COLUMN llm_cached_tokens bigint NOT NULL DEFAULT 0;
      ALTER TABLE collection_runs ADD COLUMN llm_reasoning_tokens bigint NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 5,
    name: 'LLM request and token budgets shared by all workers',
    sql: `
      CREATE TABLE llm_budget (
        key text PRIMARY KEY,
        rpm_cap double precision NOT NULL DEFAULT 0,
        rpd_cap double precision NOT NULL DEFAULT 0,
        tpm_cap double precision NOT NULL DEFAULT 0,
        tpd_cap double precision NOT NULL DEFAULT 0,
        rpm double precision NOT NULL DEFAULT 0,
        rpd double precision NOT NULL DEFAULT 0,
        tpm double precision NOT NULL DEFAULT 0,
        tpd double precision NOT NULL DEFAULT 0,
        paused_until timestamptz NOT NULL DEFAULT '-infinity',
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 6,
    name: 'gate notifications: targets per deployment, deliveries by idempotency key',
    sql: `
      ALTER TABLE deployments ADD COLUMN notify jsonb NOT NULL DEFAULT '[]';
      CREATE TABLE notifications (
        idempotency_key text PRIMARY KEY,
        gate_id text NOT NULL,
        deployment text NOT NULL,
        target_kind text NOT NULL,
        events text[] NOT NULL,
        status text NOT NULL,
        detail text NOT NULL DEFAULT '',
        attempts int NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz
      );
      CREATE INDEX notifications_gate ON notifications (gate_id);
    `,
  },
  {
    version: 7,
    name: 'webhook URLs with credentials, kept out of workflow histories',
    sql: `
      CREATE TABLE deployer_urls (
        gate_id text PRIMARY KEY,
        url text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 8,
    name: 'when a collection cycle began its work (lateness against its scheduled time)',
    sql: `
      ALTER TABLE collection_runs ADD COLUMN started_at timestamptz;
    `,
  },
  {
    version: 9,
    name: 'rollbacks: one delivery at a time per deployment, and when its gate started',
    sql: `
      ALTER TABLE rollbacks ADD COLUMN gate_started_at timestamptz;
      ALTER TABLE rollbacks ADD COLUMN attempt_at timestamptz;
      CREATE INDEX rollbacks_deployment ON rollbacks (deployment, from_version, to_version);
    `,
  },
  {
    version: 10,
    name: 'indexes for reads that grow with history: recent LLM cycles, latest baseline, latest successful agent runs',
    sql: `
      CREATE INDEX collection_runs_llm_recent ON collection_runs (deployment, judge, finished_at DESC) WHERE llm_calls > 0;
      CREATE INDEX baselines_recent ON baselines (deployment, computed_at DESC);
      CREATE INDEX agent_runs_ok ON agent_runs (agent, finished_at DESC) WHERE status = 'ok';
    `,
  },
  {
    version: 11,
    name: 'workers: who polls which task queue, with fingerprints of the settings they must share',
    sql: `
      CREATE TABLE workers (
        id text PRIMARY KEY,
        identity text NOT NULL,
        task_queue text NOT NULL,
        host text NOT NULL,
        pid int NOT NULL,
        started_at timestamptz NOT NULL,
        last_seen timestamptz NOT NULL DEFAULT now(),
        fingerprints jsonb NOT NULL
      );
    `,
  },
];
