/**
 * Payload encryption end to end on the shared dev server: what the server stores holds none of
 * a known marker, while the codec (in the client, or through the codec server as the Web UI
 * uses it) reads it back, failure messages included.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, WorkflowFailedError } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { AesGcmCodec, dataConverterFor, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../workers/codec.js';
import { startCodecServer, type CodecServer } from '../../client/codec-server.js';
import { startTestStack, testConfig, uniqueId, type TestStack } from '../helpers/env.js';

const MARKER = `secret-marker-${randomBytes(6).toString('hex')}`;
const OLD_KEY = `old:${randomBytes(32).toString('base64')}`;
const NEW_KEY = `new:${randomBytes(32).toString('base64')}`;

/** Every string and every byte string (read as UTF-8) in a history, so plaintext anywhere is found. */
function textOf(x: unknown, out: string[] = []): string[] {
  if (x instanceof Uint8Array) out.push(Buffer.from(x).toString('utf8'));
  else if (typeof x === 'string') out.push(x);
  else if (Array.isArray(x)) for (const v of x) textOf(v, out);
  else if (x && typeof x === 'object') for (const v of Object.values(x)) textOf(v, out);
  return out;
}

const isEncrypted = (x: unknown): x is Payload => {
  const enc = (x as Payload | null)?.metadata?.encoding;
  return enc instanceof Uint8Array && Buffer.from(enc).toString() === ENCRYPTED_ENCODING;
};

function encryptedPayloads(x: unknown, out: Payload[] = []): Payload[] {
  if (isEncrypted(x)) out.push(x);
  else if (Array.isArray(x)) for (const v of x) encryptedPayloads(v, out);
  else if (x && typeof x === 'object' && !(x instanceof Uint8Array)) for (const v of Object.values(x)) encryptedPayloads(v, out);
  return out;
}

describe('payload encryption', () => {
  let stack: TestStack;
  let raw: Client;
  let server: CodecServer;
  const TOKEN = 'codec-token-0123456789';

  beforeAll(async () => {
    // Two keys: the first encrypts, the second (retired) still decrypts.
    stack = await startTestStack(testConfig({ OPTIINFRA_ENCRYPTION_KEYS: `${NEW_KEY},${OLD_KEY}` }));
    raw = new Client({ connection: stack.client.connection, namespace: stack.config.temporal.namespace });
    server = await startCodecServer({
      port: 0,
      codec: new AesGcmCodec(stack.config.encryption!.keys),
      token: TOKEN,
      corsOrigin: stack.config.codec.corsOrigin,
    });
  });
  afterAll(async () => {
    await server?.close();
    await stack?.stop();
  });

  /** Decode payloads through the codec server, as the Web UI does. */
  async function decodeViaServer(payloads: Payload[]): Promise<string> {
    const b64 = (b?: Uint8Array | null) => Buffer.from(b ?? new Uint8Array()).toString('base64');
    const r = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${TOKEN}`,
        'x-namespace': 'default',
        origin: stack.config.codec.corsOrigin,
      },
      body: JSON.stringify({
        payloads: payloads.map((p) => ({
          metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
          data: b64(p.data),
        })),
      }),
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBe(stack.config.codec.corsOrigin);
    const body = (await r.json()) as { payloads: Array<{ data: string }> };
    expect(body.payloads).toHaveLength(payloads.length);
    return body.payloads.map((p) => Buffer.from(p.data, 'base64').toString('utf8')).join('\n');
  }

  it('stores inputs, results, memo and summary encrypted; the codec reads them back', async () => {
    const workflowId = uniqueId('codec/ask');
    const handle = await stack.client.workflow.start('costAgent', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      args: [{ question: `What does ${MARKER} cost?`, days: 1 }],
      memo: { note: MARKER },
      staticSummary: `Question about ${MARKER}`,
    });
    const result = (await handle.result()) as { runId: string };
    expect(result.runId).toBe(workflowId);

    const history = await raw.workflow.getHandle(workflowId).fetchHistory();
    expect(history.events!.length).toBeGreaterThan(3);
    expect(JSON.stringify(history)).not.toContain(MARKER);
    expect(textOf(history).join('\n')).not.toContain(MARKER);

    const encrypted = encryptedPayloads(history);
    const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
    expect(isEncrypted(started.input!.payloads![0])).toBe(true);
    expect(isEncrypted(started.memo!.fields!.note)).toBe(true);
    expect(isEncrypted(history.events![0]!.userMetadata!.summary)).toBe(true);
    const completed = history.events!.find((e) => e.workflowExecutionCompletedEventAttributes)!;
    expect(isEncrypted(completed.workflowExecutionCompletedEventAttributes!.result!.payloads![0])).toBe(true);
    expect(new Set(encrypted.map((p) => Buffer.from(p.metadata![KEY_ID_METADATA]!).toString()))).toEqual(new Set(['new']));

    // Through the codec server (the Web UI's path) and through a client with the codec.
    const decoded = await decodeViaServer(encrypted);
    expect(decoded).toContain(`What does ${MARKER} cost?`);
    expect(decoded.split('\n')).toContain(JSON.stringify(MARKER)); // the memo field
    expect(decoded).toContain(`Question about ${MARKER}`);
    const desc = await stack.client.workflow.getHandle(workflowId).describe();
    expect(desc.memo).toEqual({ note: MARKER });
    expect(await desc.staticSummary()).toBe(`Question about ${MARKER}`);
    // Without the codec, the client cannot read the memo.
    await expect(raw.workflow.getHandle(workflowId).describe()).rejects.toThrow(/Unknown encoding: binary\/encrypted/);
  });

  it('encrypts failure messages too', async () => {
    const workflowId = uniqueId('codec/review');
    const failed = await stack.client.workflow
      .execute('optimizationReview', {
        taskQueue: stack.config.temporal.taskQueue,
        workflowId,
        args: [{ agents: [MARKER] }],
      })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    expect((failed as WorkflowFailedError).cause?.message).toContain(`unknown agents: ${MARKER}`);

    const history = await raw.workflow.getHandle(workflowId).fetchHistory();
    expect(textOf(history).join('\n')).not.toContain(MARKER);
    const f = history.events!.find((e) => e.workflowExecutionFailedEventAttributes)!.workflowExecutionFailedEventAttributes!.failure!;
    expect(f.message).toBe('Encoded failure');
    expect(f.stackTrace).toBe('');
    expect(isEncrypted(f.encodedAttributes)).toBe(true);
    expect(await decodeViaServer([f.encodedAttributes as Payload])).toContain(`unknown agents: ${MARKER}`);

    // A client without the codec cannot read the failure.
    const plain = await raw.workflow
      .getHandle(workflowId)
      .result()
      .catch((e: unknown) => e);
    expect(plain).toBeInstanceOf(Error);
    expect(String(plain)).toMatch(/Unknown encoding: binary\/encrypted/);
    expect(`${String(plain)} ${String((plain as Error).cause)}`).not.toContain(MARKER);
  });

  it('still reads histories written with a retired key', async () => {
    // A client that encrypts with the old key only (as before the rotation) starts a workflow;
    // the worker, with the new key first, runs it, and so does the codec server.
    const oldOnly = testConfig({ OPTIINFRA_ENCRYPTION_KEYS: OLD_KEY });
    const before = new Client({
      connection: stack.client.connection,
      namespace: stack.config.temporal.namespace,
      dataConverter: dataConverterFor(oldOnly),
    });
    const workflowId = uniqueId('codec/rotation');
    await before.workflow.start('costAgent', {
      taskQueue: stack.config.temporal.taskQueue,
      workflowId,
      args: [{ question: `Rotated ${MARKER}?`, days: 1 }],
    });
    await stack.client.workflow.getHandle(workflowId).result();
    const history = await raw.workflow.getHandle(workflowId).fetchHistory();
    const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    expect(Buffer.from(input.metadata![KEY_ID_METADATA]!).toString()).toBe('old');
    expect(await decodeViaServer([input as Payload])).toContain(`Rotated ${MARKER}?`);
  });
});
