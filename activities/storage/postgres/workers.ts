/**
 * The workers of each task queue (table workers) and whether they are equivalent, as Temporal
 * requires: any of them may run any task of the queue. Each worker records itself at start and
 * every REFRESH_MS while it runs, with fingerprints of the settings all must share, and warns
 * about the workers of its queue whose fingerprints differ from its own.
 *
 * Secrets are kept as slow, short scrypt fingerprints: equal secrets give equal fingerprints,
 * and the fingerprint never appears in a message or listing (`secretLabels` groups them).
 */
import { randomUUID, scryptSync } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../../../common/config.js';
import { redact, secretsOf } from '../../../common/secrets.js';
import { judgeName, promptVersionsFor } from '../../collector/activities.js';
import { reasonOf } from '../migration-error.js';
import type { Db } from './db.js';

/** The settings every worker of a task queue must share; secrets as fingerprints, null when unset. */
export interface Fingerprints {
  /** 'offline' or 'groq:<model>'. */
  judge: string;
  /** LLM_JUDGE_MODE; null with the offline judge (which has no modes). */
  judgeMode: string | null;
  /** `check=version` of each check, as scores are keyed. */
  promptVersions: string;
  webhookSecret: string | null;
  encryptionKeys: string | null;
}

export type SecretSetting = 'webhookSecret' | 'encryptionKeys';

export interface WorkerRecord {
  id: string;
  /** The Temporal worker identity (`pid@host` unless configured). */
  identity: string;
  taskQueue: string;
  host: string;
  pid: number;
  startedAt: string;
  lastSeen?: string;
  fingerprints: Fingerprints;
}

/** How often a running worker records itself and compares; workers seen within RECENT_MINUTES count. */
export const REFRESH_MS = 60_000;
export const RECENT_MINUTES = 5;

const SALT = 'optiinfra-worker-fingerprint';

/** 6 bytes of scrypt (hex) of the secret, or null when unset. */
export function secretFingerprint(secret: string | undefined): string | null {
  return secret ? scryptSync(secret, SALT, 6).toString('hex') : null;
}

export function fingerprintsOf(config: Config): Fingerprints {
  const judge = judgeName(config);
  const versions = promptVersionsFor(judge, config.llm.judgeMode);
  return {
    judge,
    judgeMode: config.llm.enabled ? config.llm.judgeMode : null,
    promptVersions: Object.entries(versions)
      .map(([c, v]) => `${c}=${v}`)
      .join(','),
    webhookSecret: secretFingerprint(config.webhookSecret),
    encryptionKeys: secretFingerprint(config.encryption?.keys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(',')),
  };
}

const UNCOMPARED = 'scores of different judges are never compared, so a gate may wait for samples that never come';
const none = (o: string | null, r: string | null, ref: string) => (o === null ? ' (it has none)' : r === null ? ` (${ref} has none)` : '');

/** What a worker does differently from `ref`, setting by setting (never a secret or its fingerprint). */
const SAYS: Record<keyof Fingerprints, (o: Fingerprints, r: Fingerprints, ref: string) => string> = {
  judge: (o, r, ref) =>
    `judges with '${o.judge}' where ${ref} judges with '${r.judge}': ${UNCOMPARED}; give every worker the same GROQ_API_KEY, LLM_ENABLED and GROQ_MODEL`,
  judgeMode: (o, r, ref) =>
    `has LLM_JUDGE_MODE=${o.judgeMode} where ${ref} has ${r.judgeMode}: ${UNCOMPARED}; give every worker the same LLM_JUDGE_MODE`,
  promptVersions: (o, r, ref) =>
    `judges with prompt versions ${o.promptVersions} where ${ref} uses ${r.promptVersions} (another release?): ${UNCOMPARED}; run one release on every worker`,
  webhookSecret: (o, r, ref) =>
    `signs rollbacks and notifications with a different OPTIINFRA_WEBHOOK_SECRET than ${ref}${none(o.webhookSecret, r.webhookSecret, ref)}: a rollback it delivers may be refused (401); give every worker the same secret`,
  encryptionKeys: (o, r, ref) =>
    `encrypts workflow payloads with different OPTIINFRA_ENCRYPTION_KEYS than ${ref}${none(o.encryptionKeys, r.encryptionKeys, ref)}: payloads one writes may be unreadable to the other; give every worker the same keys`,
};

/**
 * One warning per setting in which a worker of `others` differs from `ref`. Of the judge settings
 * only the first difference is named (a different judge implies different prompt versions).
 */
export function driftWarnings(ref: WorkerRecord, others: readonly WorkerRecord[]): string[] {
  return others.flatMap((o) => {
    const differs = (k: keyof Fingerprints) => o.fingerprints[k] !== ref.fingerprints[k];
    const judge = (['judge', 'judgeMode', 'promptVersions'] as const).find(differs);
    const settings = [...(judge ? [judge] : []), ...(['webhookSecret', 'encryptionKeys'] as const).filter(differs)];
    return settings.map(
      (k) =>
        `warning: worker ${o.identity} (host ${o.host}) on task queue '${o.taskQueue}' ${SAYS[k](o.fingerprints, ref.fingerprints, ref.identity)}`,
    );
  });
}

/** Warnings over a listing (ordered by queue and start): each worker against the first started on its queue. */
export function fleetWarnings(workers: readonly WorkerRecord[]): string[] {
  return workers.flatMap((w) => {
    const ref = workers.find((x) => x.taskQueue === w.taskQueue)!;
    return ref === w ? [] : driftWarnings(ref, [w]);
  });
}

/** A label per worker for one secret: 'secret A', 'secret B'… in order of first appearance; 'unset'. */
export function secretLabels(workers: readonly WorkerRecord[], key: SecretSetting): string[] {
  const seen: string[] = [];
  return workers.map(({ fingerprints: { [key]: f } }) => {
    if (f === null) return 'unset';
    if (!seen.includes(f)) seen.push(f);
    const i = seen.indexOf(f);
    return `secret ${String.fromCharCode(65 + (i % 26))}${i >= 26 ? Math.floor(i / 26) : ''}`;
  });
}

/** Record (or refresh) a worker; rows not seen for a day are deleted first. */
export async function recordWorker(db: Db, w: WorkerRecord): Promise<void> {
  await db.query(`DELETE FROM workers WHERE last_seen < now() - interval '1 day'`);
  await db.query(
    `INSERT INTO workers (id, identity, task_queue, host, pid, started_at, fingerprints) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (id) DO UPDATE SET last_seen = now()`,
    [w.id, w.identity, w.taskQueue, w.host, w.pid, w.startedAt, JSON.stringify(w.fingerprints)],
  );
}

/** Workers seen in the last RECENT_MINUTES (of one task queue), by queue and start. */
export async function recentWorkers(db: Db, taskQueue?: string): Promise<WorkerRecord[]> {
  const r = await db.query<{
    id: string;
    identity: string;
    task_queue: string;
    host: string;
    pid: number;
    started_at: Date;
    last_seen: Date;
    fingerprints: Partial<Fingerprints>;
  }>(
    `SELECT * FROM workers WHERE last_seen > now() - make_interval(mins => $1) AND ($2::text IS NULL OR task_queue = $2)
     ORDER BY task_queue, started_at, id`,
    [RECENT_MINUTES, taskQueue ?? null],
  );
  return r.rows.map((x) => {
    const f = x.fingerprints;
    return {
      id: x.id,
      identity: x.identity,
      taskQueue: x.task_queue,
      host: x.host,
      pid: x.pid,
      startedAt: x.started_at.toISOString(),
      lastSeen: x.last_seen.toISOString(),
      // A row written by another release may lack a setting: unknown compares as unset.
      fingerprints: {
        judge: f.judge ?? '?',
        judgeMode: f.judgeMode ?? null,
        promptVersions: f.promptVersions ?? '?',
        webhookSecret: f.webhookSecret ?? null,
        encryptionKeys: f.encryptionKeys ?? null,
      },
    };
  });
}

/**
 * Record this worker now and every `everyMs` until stopped, logging each new difference from
 * another worker of its queue once. A failure to record is logged and retried at the next
 * refresh; nothing here stops the worker. `stop` removes the record.
 */
export function watchWorkerDrift(
  db: Db,
  config: Config,
  identity: string,
  o: { log?: (line: string) => void; everyMs?: number } = {},
): { first: Promise<void>; stop(): Promise<void> } {
  const { log = console.warn, everyMs = REFRESH_MS } = o;
  const me: WorkerRecord = {
    id: randomUUID(),
    identity,
    taskQueue: config.temporal.taskQueue,
    host: hostname(),
    pid: process.pid,
    startedAt: new Date().toISOString(),
    fingerprints: fingerprintsOf(config),
  };
  const said = new Set<string>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const refresh = async () => {
    try {
      await recordWorker(db, me);
      const others = (await recentWorkers(db, me.taskQueue)).filter((w) => w.id !== me.id);
      for (const line of driftWarnings(me, others).filter((l) => !said.has(l))) {
        said.add(line);
        log(line);
      }
    } catch (e) {
      log(
        `warning: could not record this worker in PostgreSQL (${redact(reasonOf(e), secretsOf(config))}); trying again in ${everyMs / 1000} s`,
      );
    }
    if (stopped) return;
    timer = setTimeout(() => {
      current = refresh();
    }, everyMs);
    timer.unref();
  };
  let current = refresh();
  return {
    first: current,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
      await db.query('DELETE FROM workers WHERE id = $1', [me.id]).catch(() => undefined);
    },
  };
}
