/**
 * docker-compose.yml, checked without a Docker engine: parsed as YAML, variables interpolated
 * the way Compose does (`${VAR:-default}`, `$$` for a literal `$`), then the distributed
 * deployment it promises: a Temporal server on PostgreSQL (not the dev server), ClickHouse, N
 * worker replicas configured the way the product reads its configuration, health checks where
 * other services wait on them, and one-shot jobs that finish.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../common/config.js';
import { repoRoot } from '../../stack/paths.js';
import { SEARCH_ATTRIBUTES } from '../../stack/temporal.js';

type Dict = Record<string, unknown>;
interface Service {
  image?: string;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Dict | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: {
    test?: string | string[];
    interval?: string;
    timeout?: string;
    retries?: number;
    start_period?: string;
    disable?: boolean;
  };
  ports?: Array<string | Dict>;
  volumes?: Array<string | Dict>;
  configs?: Array<string | { source: string; target?: string }>;
  deploy?: { replicas?: number | string };
  restart?: string;
  container_name?: string;
  stop_grace_period?: string;
}
interface ComposeFile {
  name?: string;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  configs?: Record<string, { content?: string; file?: string }>;
}

const raw = readFileSync(join(repoRoot(), 'docker-compose.yml'), 'utf8');

/** Compose's interpolation with an empty environment: `${VAR:-default}` / `${VAR-default}` give the default, `$$` a `$`. */
function interpolate(s: string): string {
  return s.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g,
    (m, _name: string | undefined, op: string | undefined, dflt: string | undefined) => {
      if (m === '$$') return '$';
      return op ? (dflt ?? '') : '';
    },
  );
}

function deepInterpolate<T>(v: T): T {
  if (typeof v === 'string') return interpolate(v) as T;
  if (Array.isArray(v)) return v.map(deepInterpolate) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deepInterpolate(x)])) as T;
  return v;
}

/** Every string of the file (keys excluded), for checks of the interpolation syntax. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) strings(x, out);
  return out;
}

const parsed = parse(raw, { merge: true }) as ComposeFile;
const compose = deepInterpolate(parsed);
const services = compose.services;

function env(svc: string): Record<string, string> {
  const e = services[svc]?.environment ?? {};
  if (Array.isArray(e)) {
    return Object.fromEntries(e.map((kv) => [kv.split('=')[0]!, kv.split('=').slice(1).join('=')]));
  }
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)]));
}

function dependsOn(svc: Service): Record<string, string> {
  const d = svc.depends_on ?? [];
  if (Array.isArray(d)) return Object.fromEntries(d.map((n) => [n, 'service_started']));
  return Object.fromEntries(Object.entries(d).map(([n, c]) => [n, c?.condition ?? 'service_started']));
}

function commandText(svc: Service): string {
  const c = svc.command ?? '';
  return Array.isArray(c) ? c.join(' ') : c;
}

const seconds = (d: string): number => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(d);
  if (!m) throw new Error(`not a Compose duration: ${d}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h'];
};

describe('docker-compose.yml', () => {
  it('parses, and every variable is written the way Compose interpolates it', () => {
    expect(parsed.name).toBe('optiinfra');
    expect(Object.keys(services).length).toBeGreaterThan(0);
    for (const s of strings(parsed)) {
      // A bare `$name` would be replaced by Compose (shell variables must be written `$$name`);
      // `${...}` must name a variable, with a default unless it may be empty.
      const bare = s.replace(/\$\$/g, '').match(/\$(?!\{)[A-Za-z_(]/g);
      expect(bare, `bare $ in: ${s}`).toBeNull();
      for (const m of s.replace(/\$\$/g, '').matchAll(/\$\{([^}]*)\}/g)) {
        expect(m[1], `malformed \${...} in: ${s}`).toMatch(/^[A-Za-z_][A-Za-z0-9_]*(:?-[^}]*)?$/);
      }
    }
  });

  it('runs the services of a distributed deployment, every image pinned to a version', () => {
    for (const name of [
      'postgres',
      'clickhouse',
      'temporal-schema',
      'temporal',
      'temporal-setup',
      'temporal-ui',
      'worker-deps',
      'worker',
    ]) {
      expect(services, `service ${name}`).toHaveProperty(name);
    }
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.image, `${name} has an image`).toBeTruthy();
      const tag = /^[^:@]+(?::([^@]+))?(@sha256:[0-9a-f]{64})?$/.exec(svc.image!);
      expect(tag, `${name}: image reference ${svc.image}`).not.toBeNull();
      expect(tag![1] ?? tag![2], `${name}: ${svc.image} is pinned`).toBeTruthy();
      expect(tag![1], `${name}: ${svc.image} is not 'latest'`).not.toBe('latest');
    }
  });

  it('every dependency exists, waits on a health check or a finished job, and none is circular', () => {
    const conditions = ['service_started', 'service_healthy', 'service_completed_successfully'];
    for (const [name, svc] of Object.entries(services)) {
      for (const [dep, cond] of Object.entries(dependsOn(svc))) {
        expect(services, `${name} depends on ${dep}`).toHaveProperty(dep);
        expect(conditions).toContain(cond);
        if (cond === 'service_healthy')
          expect(services[dep]!.healthcheck?.test, `${dep} has a health check (${name} waits on it)`).toBeTruthy();
        if (cond === 'service_completed_successfully') {
          // A job: it must not be restarted forever, and must do something.
          expect(services[dep]!.restart ?? 'no', `${dep} is a one-shot job`).toMatch(/^(no|on-failure(:\d+)?)$/);
          expect(commandText(services[dep]!), `${dep} has a command`).not.toBe('');
        }
      }
    }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (n: string, path: string[]) => {
      if (done.has(n)) return;
      expect(visiting.has(n), `dependency cycle: ${[...path, n].join(' -> ')}`).toBe(false);
      visiting.add(n);
      for (const d of Object.keys(dependsOn(services[n]!))) visit(d, [...path, n]);
      visiting.delete(n);
      done.add(n);
    };
    for (const n of Object.keys(services)) visit(n, []);
  });

  it('health checks of the servers are well formed and give a loaded machine time to start', () => {
    for (const name of ['postgres', 'clickhouse', 'temporal']) {
      const h = services[name]!.healthcheck;
      expect(h?.test, `${name} health check`).toBeTruthy();
      expect(h!.disable ?? false).toBe(false);
      const test = Array.isArray(h!.test) ? h!.test : ['CMD-SHELL', h!.test!];
      expect(['CMD', 'CMD-SHELL']).toContain(test[0]);
      expect(test.length).toBeGreaterThan(1);
      for (const k of ['interval', 'timeout'] as const) expect(seconds(h![k]!), `${name} ${k}`).toBeGreaterThan(0);
      expect(seconds(h!.timeout!)).toBeLessThanOrEqual(seconds(h!.interval!));
      // interval × retries (+ start period): at least a minute before it counts as failed.
      const budget = seconds(h!.interval!) * (h!.retries ?? 3) + (h!.start_period ? seconds(h!.start_period) : 0);
      expect(budget, `${name} health budget`).toBeGreaterThanOrEqual(60);
    }
    expect(commandText({ command: services.postgres!.healthcheck!.test } as Service)).toContain('pg_isready');
    expect(commandText({ command: services.clickhouse!.healthcheck!.test } as Service)).toContain('/ping');
  });

  it('Temporal is the server on PostgreSQL persistence, not the dev server, with its schema set up first', () => {
    const t = services.temporal!;
    expect(t.image).toMatch(/^temporalio\/server:\d+\.\d+\.\d+$/);
    expect(`${commandText(t)} ${JSON.stringify(t.entrypoint ?? '')}`).not.toMatch(/start-dev/);
    const e = env('temporal');
    expect(e.DB).toBe('postgres12');
    expect(e.POSTGRES_SEEDS).toBe('postgres');
    expect(e.DB_PORT).toBe('5432');
    expect(e.POSTGRES_PWD).toBe(env('postgres').POSTGRES_PASSWORD);
    expect(Number(e.NUM_HISTORY_SHARDS)).toBeGreaterThanOrEqual(1);
    expect(dependsOn(t)).toMatchObject({ 'temporal-schema': 'service_completed_successfully' });
    // The schema job sets up both databases and upgrades them on a newer server.
    const schema = services['temporal-schema']!;
    expect(schema.image?.replace(/:.*/, '')).toBe('temporalio/admin-tools');
    expect(schema.image?.split(':')[1]).toBe(t.image?.split(':')[1]); // same release as the server
    expect(env('temporal-schema')).toMatchObject({
      SQL_PLUGIN: 'postgres12',
      SQL_HOST: 'postgres',
      SQL_PASSWORD: env('postgres').POSTGRES_PASSWORD,
    });
    const job = commandText(schema);
    expect(job).toMatch(/for db in temporal temporal_visibility; do\s+temporal-sql-tool --db "\$db" create/);
    for (const [db, dir] of [
      ['temporal', 'temporal'],
      ['temporal_visibility', 'visibility'],
    ]) {
      expect(job).toContain(`temporal-sql-tool --db ${db} setup-schema -v 0.0`);
      expect(job).toContain(`temporal-sql-tool --db ${db} update-schema -d /etc/temporal/schema/postgresql/v12/${dir}/versioned`);
    }
    expect(dependsOn(schema)).toMatchObject({ postgres: 'service_healthy' });
  });

  it('the dynamic configuration is mounted where the server reads it, and is valid YAML', () => {
    const t = services.temporal!;
    const path = env('temporal').DYNAMIC_CONFIG_FILE_PATH!;
    const mount = (t.configs ?? []).find((c) => typeof c === 'object' && c.target === `/etc/temporal/${path}`) as
      | { source: string }
      | undefined;
    expect(mount, `a config mounted at /etc/temporal/${path}`).toBeDefined();
    const content = compose.configs?.[mount!.source]?.content;
    expect(content).toBeTruthy();
    const dyn = parse(content!) as Record<string, Array<{ value: unknown; constraints?: Record<string, unknown> }>>;
    for (const [key, values] of Object.entries(dyn)) {
      expect(key).toMatch(/^[a-z]+\.[A-Za-z]+$/);
      expect(Array.isArray(values) && values.every((v) => 'value' in v), `${key}: a list of {value, constraints?}`).toBe(true);
    }
    // The LLM queue (the workers' task queue + "-llm") is the one given a single partition.
    const llmQueue = loadConfig(env('worker')).temporal.llmTaskQueue;
    for (const key of ['matching.numTaskqueueReadPartitions', 'matching.numTaskqueueWritePartitions']) {
      expect(dyn[key]?.find((v) => v.constraints?.taskQueueName === llmQueue)?.value, key).toBe(1);
    }
    expect(dyn['frontend.enableUpdateWorkflowExecution']?.[0]?.value).toBe(true);
  });

  it('registers the namespace and exactly the search attributes the workflows use', () => {
    const setup = services['temporal-setup']!;
    expect(dependsOn(setup)).toMatchObject({ temporal: 'service_healthy' });
    const job = commandText(setup);
    expect(job).toMatch(/operator namespace create/);
    const declared = Object.fromEntries([...job.matchAll(/\b(Opti[A-Za-z]+)=([A-Za-z]+)/g)].map((m) => [m[1], m[2]]));
    expect(declared).toEqual(SEARCH_ATTRIBUTES);
  });

  it('runs N worker replicas whose environment the product accepts, pointing at the services of the file', () => {
    const w = services.worker!;
    expect(Number(w.deploy?.replicas)).toBeGreaterThanOrEqual(2);
    expect(raw).toMatch(/replicas: \$\{OPTIINFRA_WORKERS:-\d+\}/); // the count is a setting
    // Replicas cannot share a container name or host ports.
    expect(w.container_name).toBeUndefined();
    expect(w.ports ?? []).toEqual([]);
    expect(commandText(w)).toMatch(/bin\/optiinfra\.mjs worker$/); // the launcher caps the worker's heap
    expect(commandText(w)).not.toMatch(/npm (ci|install)/); // installed once, by worker-deps
    expect(dependsOn(w)).toMatchObject({
      postgres: 'service_healthy',
      clickhouse: 'service_healthy',
      'temporal-setup': 'service_completed_successfully',
      'worker-deps': 'service_completed_successfully',
    });
    // The shutdown of a worker (30 s at most) fits in the grace period before SIGKILL.
    expect(seconds(w.stop_grace_period ?? '10s')).toBeGreaterThan(30);

    const config = loadConfig(env('worker'));
    expect(config.temporal.address).toBe('temporal:7233');
    const ch = new URL(config.clickhouse.url!);
    expect(ch.hostname).toBe('clickhouse');
    expect(decodeURIComponent(ch.username)).toBe(env('clickhouse').CLICKHOUSE_USER);
    expect(decodeURIComponent(ch.password)).toBe(env('clickhouse').CLICKHOUSE_PASSWORD);
    expect(config.clickhouse.database).toBe(env('clickhouse').CLICKHOUSE_DB);
    const db = new URL(config.databaseUrl!);
    expect(db.hostname).toBe('postgres');
    expect(db.pathname).toBe(`/${env('postgres').POSTGRES_DB}`);
    expect(decodeURIComponent(db.password)).toBe(env('postgres').POSTGRES_PASSWORD);
    expect(config.llm.requestsPerSecond).toBeGreaterThan(0);
    expect(config.llm.concurrency).toBeGreaterThan(0);
    // No key by default: the offline judge.
    expect(config.llm.enabled).toBe(false);

    // The worker image runs the repository's code and the dependencies installed by worker-deps.
    const deps = services['worker-deps']!;
    expect(deps.image).toBe(w.image);
    expect(commandText(deps)).toMatch(/^npm ci\b/);
    const volumeOf = (s: Service, target: string) =>
      (s.volumes ?? [])
        .map((v) => (typeof v === 'string' ? v.split(':') : [String(v.source), String(v.target)]))
        .find((v) => v[1] === target)?.[0];
    expect(volumeOf(w, '/app/node_modules')).toBe(volumeOf(deps, '/app/node_modules'));
    expect(volumeOf(w, '/app')).toBe('.');
  });

  it('declares its named volumes and configs, and publishes ports on the loopback interface only', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const v of svc.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0]! : String(v.source ?? '');
        if (source && !/^[./~]/.test(source)) expect(compose.volumes ?? {}, `${name}: volume ${source}`).toHaveProperty(source);
      }
      for (const c of svc.configs ?? [])
        expect(compose.configs ?? {}, `${name}: config`).toHaveProperty(typeof c === 'string' ? c : c.source);
      for (const p of svc.ports ?? []) {
        const text = typeof p === 'string' ? p : String((p as Dict).host_ip ?? '');
        expect(text, `${name}: port ${JSON.stringify(p)}`).toMatch(/^127\.0\.0\.1(:|$)/);
      }
    }
  });
});
