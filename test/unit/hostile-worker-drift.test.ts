/**
 * Workers of one task queue that are not equivalent: the pure comparison of their recorded
 * settings, the group labels of their secrets, and fingerprints that give no secret away.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../common/config.js';
import {
  driftWarnings,
  fingerprintsOf,
  fleetWarnings,
  secretLabels,
  type WorkerRecord,
} from '../../activities/storage/postgres/workers.js';

const SECRET_A = 'webhook-secret-aaaa-0001';
const SECRET_B = 'webhook-secret-bbbb-0002';

function worker(identity: string, env: Record<string, string>, taskQueue = 'optiinfra'): WorkerRecord {
  return {
    id: identity,
    identity,
    taskQueue,
    host: identity.split('@')[1]!,
    pid: 1,
    startedAt: '2024-01-01T00:00:00.000Z',
    fingerprints: fingerprintsOf(loadConfig(env)),
  };
}

describe('worker drift', () => {
  // Pins: a worker signing with another OPTIINFRA_WEBHOOK_SECRET is named, with the consequence, and
  // nothing of either secret or its fingerprint is in the text. Failed before: nothing compared
  // workers; the rollback signed with the other secret was refused (401) and the bad model stayed.
  it('names a different webhook secret, never the secret or its fingerprint', () => {
    const w1 = worker('w1@hostA', { OPTIINFRA_WEBHOOK_SECRET: SECRET_A });
    const w2 = worker('w2@hostB', { OPTIINFRA_WEBHOOK_SECRET: SECRET_B });
    const lines = driftWarnings(w1, [w2]);
    expect(lines).toEqual([
      "warning: worker w2@hostB (host hostB) on task queue 'optiinfra' signs rollbacks and notifications with a different OPTIINFRA_WEBHOOK_SECRET than w1@hostA: a rollback it delivers may be refused (401); give every worker the same secret",
    ]);
    const text = JSON.stringify(lines);
    for (const s of [SECRET_A, SECRET_B, w1.fingerprints.webhookSecret!, w2.fingerprints.webhookSecret!]) expect(text).not.toContain(s);
    // The fingerprint is short, stable, and not the secret.
    expect(w1.fingerprints.webhookSecret).toMatch(/^[0-9a-f]{12}$/);
    expect(worker('w3@hostC', { OPTIINFRA_WEBHOOK_SECRET: SECRET_A }).fingerprints.webhookSecret).toBe(w1.fingerprints.webhookSecret);
    expect(driftWarnings(w1, [worker('w3@hostC', { OPTIINFRA_WEBHOOK_SECRET: SECRET_A })])).toEqual([]);
    // Unset on one side is a difference too, and says which side has none.
    expect(driftWarnings(w1, [worker('w4@hostD', {})])[0]).toContain('OPTIINFRA_WEBHOOK_SECRET than w1@hostA (it has none)');
  });

  // Pins: judge settings that differ are named once (the first of judge, mode, prompt versions);
  // the mode of the offline judge, which has none, is no difference. Failed before: workers
  // judging with different judges went unnoticed, and a gate waited for samples that never came.
  it('names a different judge or judge mode, once', () => {
    const offline = worker('w1@hostA', {});
    const groq = worker('w2@hostB', { GROQ_API_KEY: 'gsk_test_key_123', GROQ_MODEL: 'm1' });
    const separate = worker('w3@hostC', { GROQ_API_KEY: 'gsk_test_key_123', GROQ_MODEL: 'm1', LLM_JUDGE_MODE: 'separate' });
    const [judge, ...rest] = driftWarnings(offline, [groq]);
    expect(rest).toEqual([]);
    expect(judge).toContain("judges with 'groq:m1' where w1@hostA judges with 'offline'");
    expect(judge).not.toContain('gsk_test_key_123');
    const mode = driftWarnings(groq, [separate]);
    expect(mode).toHaveLength(1);
    expect(mode[0]).toContain('has LLM_JUDGE_MODE=separate where w2@hostB has combined');
    expect(driftWarnings(offline, [worker('w4@hostD', { LLM_JUDGE_MODE: 'separate' })])).toEqual([]);
  });

  // Pins: the listing labels secrets by group (A, B, unset) and compares workers of the same queue
  // only. Failed before: there was no listing of workers.
  it('labels secrets by group and compares within a task queue', () => {
    const ws = [
      worker('w1@hostA', { OPTIINFRA_WEBHOOK_SECRET: SECRET_A }),
      worker('w2@hostB', { OPTIINFRA_WEBHOOK_SECRET: SECRET_B }),
      worker('w3@hostC', {}),
      worker('w4@hostD', { OPTIINFRA_WEBHOOK_SECRET: SECRET_A }),
      worker('w5@hostE', { OPTIINFRA_WEBHOOK_SECRET: SECRET_B }, 'other'),
    ];
    expect(secretLabels(ws, 'webhookSecret')).toEqual(['secret A', 'secret B', 'unset', 'secret A', 'secret B']);
    expect(secretLabels(ws, 'encryptionKeys')).toEqual(Array(5).fill('unset'));
    const lines = fleetWarnings(ws);
    expect(lines.map((l) => l.split(' ')[2])).toEqual(['w2@hostB', 'w3@hostC']);
  });
});
