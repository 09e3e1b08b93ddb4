/**
 * Hostile rollback commands: programs that hang, ignore SIGTERM, leave children behind, flood or
 * garble their output, wait on stdin, cannot be run, or receive shell metacharacters; the
 * environment they get; the same rollback delivered twice.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandEnv, deliverRollback, type RollbackRequest } from '../../activities/gate/rollback.js';
import { failureOf, within } from '../helpers/async.js';
import { alive } from '../helpers/processes.js';

const SECRET = 'gsk_hostile_secret_0123456789abcdef';

const req: RollbackRequest = {
  gateId: 'gate/chatbot/v2',
  deployment: 'chatbot',
  fromVersion: 'v2',
  toVersion: 'v1',
  reason: 'quality dropped 12 points',
  idempotencyKey: 'gate/chatbot/v2/run-1',
};

const node = (script: string, ...args: string[]) => ({ type: 'command' as const, argv: [process.execPath, '-e', script, ...args] });

/** Waits until none of `pids` runs (or `ms` passed), and returns those still running. */
async function survivors(pids: number[], ms = 3000): Promise<number[]> {
  const until = Date.now() + ms;
  let left = pids.filter(alive);
  while (left.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter(alive);
  }
  // Clean up whatever a failing run left behind.
  for (const p of left) process.kill(p, 'SIGKILL');
  return left;
}

async function pidsIn(file: string, n: number, ms = 3000): Promise<number[]> {
  const until = Date.now() + ms;
  for (;;) {
    const pids = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
    if (pids.length >= n || Date.now() > until) return pids;
    await new Promise((r) => setTimeout(r, 50));
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'optiinfra-hostile-deployer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a rollback command that will not end', () => {
  // Failed before: only SIGTERM was sent at the timeout, so the attempt never ended.
  it('ignoring SIGTERM: stopped within the timeout plus a grace, killed, retryable', async () => {
    const pidFile = path.join(dir, 'ignore-term.pid');
    const script = `process.on('SIGTERM', () => {}); require('fs').writeFileSync(process.argv[1], process.pid + '\\n'); setInterval(() => {}, 1000);`;
    const started = Date.now();
    const f = await within(failureOf(deliverRollback(node(script, pidFile), req, { timeoutMs: 500 })), 12_000);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain('did not finish within 0.5 s');
    expect(await survivors(await pidsIn(pidFile, 1))).toEqual([]);
  });

  // Failed before: the child and the grandchild in its own session survived the timeout.
  it('with children and a grandchild in its own session: the whole tree is killed at the timeout', async () => {
    const pidFile = path.join(dir, 'tree.pid');
    const script = `
      const { spawn } = require('child_process');
      const fs = require('fs');
      const f = process.argv[1];
      const sleeper = "process.on('SIGTERM', () => {}); require('fs').appendFileSync(process.argv[1], process.pid + '\\\\n'); setInterval(() => {}, 1000)";
      spawn(process.execPath, ['-e', sleeper, f], { stdio: 'ignore' });
      spawn(process.execPath, ['-e', sleeper, f], { stdio: 'ignore', detached: true }).unref();
      fs.appendFileSync(f, process.pid + '\\n');
      setInterval(() => {}, 1000);`;
    const run = failureOf(deliverRollback(node(script, pidFile), req, { timeoutMs: 1500 }));
    const f = await within(run, 15_000);
    expect(f.message).toContain('did not finish within 1.5 s');
    const pids = await pidsIn(pidFile, 3);
    expect(pids).toHaveLength(3);
    expect(await survivors(pids)).toEqual([]);
  });

  // Failed before: a background process holding stdout kept the attempt open until it ended.
  it('that exits 0 but leaves a child holding its output open: delivered at once, the child ended', async () => {
    const pidFile = path.join(dir, 'background.pid');
    const script = `
      const { spawn } = require('child_process');
      const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: ['ignore', 'inherit', 'inherit'] });
      require('fs').writeFileSync(process.argv[1], c.pid + '\\n');
      console.log('rollback started');
      process.exit(0);`;
    const started = Date.now();
    const r = await within(deliverRollback(node(script, pidFile), req, { timeoutMs: 30_000 }), 10_000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r.status).toBe('delivered');
    expect(r.detail).toContain('rollback started');
    expect(await survivors(await pidsIn(pidFile, 1))).toEqual([]);
  });

  // Failed before: stdin was an open pipe nobody wrote to, so the command waited until the timeout.
  it('reading stdin gets end-of-file at once', async () => {
    const script = `let n = 0; process.stdin.on('data', (d) => { n += d.length; }); process.stdin.on('end', () => { console.log('stdin closed after ' + n + ' bytes'); });`;
    const r = await within(deliverRollback(node(script), req, { timeoutMs: 20_000 }), 10_000);
    expect(r.status).toBe('delivered');
    expect(r.detail).toContain('stdin closed after 0 bytes');
  });

  // Failed before: there was no way to stop a running command when the activity was cancelled.
  it('is killed, with its group, when the attempt is cancelled', async () => {
    const pidFile = path.join(dir, 'cancel.pid');
    const script = `process.on('SIGTERM', () => {}); require('fs').writeFileSync(process.argv[1], process.pid + '\\n'); setInterval(() => {}, 1000);`;
    const ac = new AbortController();
    const run = failureOf(deliverRollback(node(script, pidFile), req, { timeoutMs: 60_000, signal: ac.signal }));
    const pids = await pidsIn(pidFile, 1);
    ac.abort();
    const f = await within(run, 10_000);
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.message).toMatch(/cancelled/);
    expect(await survivors(pids)).toEqual([]);
  });
});

describe('what a rollback command writes', () => {
  const flood = (stream: 'stdout' | 'stderr', mb: number, last: string, code: number) => `
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    let left = ${mb};
    const out = process.${stream};
    function go() {
      while (left > 0) { left--; if (!out.write(chunk)) return out.once('drain', go); }
      out.write('\\n${last}\\n', () => process.exit(${code}));
    }
    go();`;

  // Failed before: more than 16 MB stopped a command that had succeeded and reported a failure.
  it('1 GB on stdout, then success: delivered, the tail kept, bounded', async () => {
    const r = await within(deliverRollback(node(flood('stdout', 1024, 'ROLLED-BACK-OK', 0)), req, { timeoutMs: 120_000 }), 120_000);
    expect(r.status).toBe('delivered');
    expect(r.detail).toContain('ROLLED-BACK-OK');
    expect(r.detail.length).toBeLessThan(3000);
  }, 130_000);

  // Failed before: stopped at 16 MB (as "more output than allowed") without the real error.
  it('1 GB on stderr, then exit 1: retryable with the last words, bounded', async () => {
    const f = await within(failureOf(deliverRollback(node(flood('stderr', 1024, 'error: cluster unreachable', 1)), req, {})), 120_000);
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.message).toContain('exited with 1');
    expect(f.message).toContain('error: cluster unreachable');
    expect(f.message.length).toBeLessThan(3000);
  }, 130_000);

  // Failed before: escapes, NUL and other control bytes went into the detail (PostgreSQL refuses NUL in text).
  it('binary bytes and ANSI escapes are not passed on', async () => {
    const script = `process.stdout.write(Buffer.concat([Buffer.from('\\x1b[31mERROR\\x1b[0m \\x1b]0;pwned\\x07 done\\r\\n'), Buffer.from([0, 1, 2, 0xff, 0xfe, 0x9b, 0x7f]), Buffer.from(' end\\n')]));`;
    const r = await deliverRollback(node(script), req, {});
    expect(r.status).toBe('delivered');
    expect(r.detail).toContain('ERROR');
    expect(r.detail).toContain('end');
    expect(r.detail).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(r.detail).not.toContain('pwned');
  });

  // Failed before: the tail was cut after redaction, so the end of a secret could show.
  it('a secret straddling the tail cut is not shown, not even in part', async () => {
    const script = `process.stderr.write('a'.repeat(5000) + process.argv[1] + 'b'.repeat(2040)); process.exit(4);`;
    const f = await failureOf(deliverRollback(node(script, SECRET), req, { secrets: [SECRET] }));
    expect(f.message).toContain('exited with 4');
    for (let i = 0; i + 8 <= SECRET.length; i++) expect(f.message).not.toContain(SECRET.slice(i, i + 8));
  });

  // Pins behaviour that already held: the exit code decides; what was printed is kept, redacted.
  it('exit 0 with an error printed is delivered, and the output says so; exit 2 is retryable with its message', async () => {
    const ok = await deliverRollback(node(`console.error('warning: deployment not found, token ' + process.argv[1]);`, SECRET), req, {
      secrets: [SECRET],
    });
    expect(ok.status).toBe('delivered');
    expect(ok.detail).toContain('exited with 0');
    expect(ok.detail).toContain('warning: deployment not found');
    expect(ok.detail).not.toContain(SECRET);
    const f = await failureOf(deliverRollback(node(`console.error('kubectl: forbidden: user cannot patch'); process.exit(2);`), req, {}));
    expect(f.type).toBe('DeployerUnavailable');
    expect(f.message).toContain('exited with 2');
    expect(f.message).toContain('kubectl: forbidden: user cannot patch');
  });
});

describe('a rollback command that cannot run', () => {
  // Pins behaviour that already held.
  it('not found, not executable, a directory, a shell line as the program: refused for good, saying why', async () => {
    const plain = path.join(dir, 'not-executable.sh');
    await writeFile(plain, '#!/bin/sh\necho hi\n');
    await chmod(plain, 0o644);
    const folder = path.join(dir, 'a-directory');
    await mkdir(folder, { recursive: true });
    const victim = path.join(dir, 'victim-program');
    for (const [program, code] of [
      [path.join(dir, 'missing'), 'ENOENT'],
      [plain, 'EACCES'],
      [folder, 'EACCES'],
      [`true; touch ${victim}`, 'ENOENT'],
    ] as const) {
      const f = await failureOf(deliverRollback({ type: 'command', argv: [program] }, req, {}));
      expect(f.type).toBe('DeployerRejected');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain(code);
    }
    await expect(stat(victim)).rejects.toThrow();
  });
});

describe('what a rollback command receives', () => {
  const saved: Record<string, string | undefined> = {};
  const worker: Record<string, string> = {
    GROQ_API_KEY: 'gsk_worker_groq_key_123456',
    DATABASE_URL: 'postgres://u:pg-worker-password@db/optiinfra',
    CLICKHOUSE_URL: 'http://u:ch-worker-password@ch:8123',
    TEMPORAL_API_KEY: 'temporal-worker-key-123456',
    OPTIINFRA_WEBHOOK_SECRET: 'whsec-worker-secret-123456',
    OPTIINFRA_ENCRYPTION_KEYS: 'k1:AAAAworkerencryptionkeyAAAAAAAAAAAAAAAAAAA=',
    OPTIINFRA_CODEC_TOKEN: 'codec-worker-token-123456',
    NODE_OPTIONS: '--require /tmp/evil.js',
  };
  beforeAll(() => {
    for (const [k, v] of Object.entries(worker)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  afterAll(() => {
    for (const k of Object.keys(worker)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  const dump = "require('fs').writeFileSync(process.argv[1], JSON.stringify({ env: process.env, args: process.argv.slice(2) }));";

  // Pins behaviour that already held (no shell, literal values, no worker secrets); OPTIINFRA_ATTEMPT is new.
  it('shell metacharacters in names, versions and arguments arrive literally; the worker secrets do not arrive', async () => {
    const out = path.join(dir, 'dump.json');
    const marker = path.join(dir, 'injected');
    const nasty: RollbackRequest = {
      ...req,
      deployment: `chat bot'"; touch ${marker}; echo "`,
      fromVersion: `$(touch ${marker})`,
      toVersion: `\`touch ${marker}\``,
      reason: `a\nb && touch ${marker} | cat > /dev/null`,
    };
    const args = [`it's "quoted"`, `a b; touch ${marker}`, `$(touch ${marker})`, '$' + '{HOME}', '*'];
    const r = await deliverRollback(node(dump, out, ...args), nasty, {});
    expect(r.status).toBe('delivered');
    const got = JSON.parse(await readFile(out, 'utf8')) as { env: Record<string, string>; args: string[] };
    expect(got.args).toEqual(args);
    expect(got.env).toMatchObject({
      OPTIINFRA_DEPLOYMENT: nasty.deployment,
      OPTIINFRA_FROM_VERSION: nasty.fromVersion,
      OPTIINFRA_TO_VERSION: nasty.toVersion,
      OPTIINFRA_REASON: nasty.reason,
      OPTIINFRA_GATE_ID: req.gateId,
      OPTIINFRA_IDEMPOTENCY_KEY: req.idempotencyKey,
      OPTIINFRA_ATTEMPT: '1',
    });
    await expect(stat(marker)).rejects.toThrow();
    const text = JSON.stringify(got.env);
    for (const [k, v] of Object.entries(worker)) {
      expect(got.env[k]).toBeUndefined();
      expect(text).not.toContain(v);
    }
    for (const k of Object.keys(got.env)) expect(['PATH', 'HOME', 'LANG'].includes(k) || k.startsWith('OPTIINFRA_')).toBe(true);
  });

  // Failed before: a repeated delivery (a retry after a worker died mid-command) looked like the first.
  it('a repeated delivery gets the same idempotency key, its attempt number, and says so', async () => {
    const out = path.join(dir, 'attempt.json');
    const r = await deliverRollback(node(dump, out), { ...req, attempt: 2 }, {});
    const got = JSON.parse(await readFile(out, 'utf8')) as { env: Record<string, string> };
    expect(got.env.OPTIINFRA_IDEMPOTENCY_KEY).toBe(req.idempotencyKey);
    expect(got.env.OPTIINFRA_ATTEMPT).toBe('2');
    expect(r.detail).toMatch(/attempt 2/);
    expect(commandEnv(req).OPTIINFRA_ATTEMPT).toBe('1');
  });
});

describe('what a rollback webhook answers (shared with the command deployer)', () => {
  // Failed before: NUL, escapes and control bytes of an error body went into the failure message.
  it("an error body's escapes and control bytes are not passed on; a cancelled attempt abandons the request", async () => {
    const { createServer } = await import('node:http');
    const server = createServer((rq, res) => {
      if (rq.url === '/slow') return void setTimeout(() => res.end(), 30_000).unref();
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(
        Buffer.concat([Buffer.from('\x1b[31mdb down\x1b[0m \x1b]0;pwned\x07'), Buffer.from([0, 7, 8, 0x7f]), Buffer.from(' retry later')]),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const f = await failureOf(deliverRollback({ type: 'webhook', url: `http://127.0.0.1:${port}/hook` }, req, {}));
      expect(f.type).toBe('DeployerUnavailable');
      expect(f.message).toContain('db down');
      expect(f.message).toContain('retry later');
      expect(f.message).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
      expect(f.message).not.toContain('pwned');
      const ac = new AbortController();
      const run = failureOf(
        deliverRollback({ type: 'webhook', url: `http://127.0.0.1:${port}/slow` }, req, { timeoutMs: 60_000, signal: ac.signal }),
      );
      setTimeout(() => ac.abort(), 200);
      const g = await within(run, 5000);
      expect(g.type).toBe('DeployerUnavailable');
      expect(g.message).toMatch(/cancelled/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
