/**
 * Payload encryption for Temporal: an AES-256-GCM `PayloadCodec` used by the client, the worker
 * and the codec server, so workflow inputs, results, memos, summaries, LLM-derived texts and
 * (with the failure converter below) failure messages are stored encrypted in the server's
 * history. Search attributes are never encrypted by Temporal.
 *
 * Encrypted payload: metadata `encoding: binary/encrypted`, `encryption-key-id: <id>`;
 * data = iv (12 bytes) || ciphertext || tag (16 bytes) of the serialized original Payload.
 * The first configured key encrypts; every configured key decrypts (rotation).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { METADATA_ENCODING_KEY, ValueError, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { Config } from '../common/config.js';
import type { EncryptionKey } from '../common/secrets.js';

const PayloadProto = proto.temporal.api.common.v1.Payload;

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A module exporting `failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true })`.
 * The SDK takes the failure converter as a module path (it is bundled into the workflow sandbox
 * and required by the worker), so it lives in a plain CommonJS file next to this one.
 */
export const failureConverterPath = fileURLToPath(new URL('./failure-converter.cjs', import.meta.url));

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : undefined);

export class CodecKeyError extends ValueError {
  override name = 'CodecKeyError';
}

export class AesGcmCodec implements PayloadCodec {
  private readonly keys: Map<string, Buffer>;
  private readonly current: EncryptionKey;

  /** `keys[0]` encrypts; all of them decrypt. */
  constructor(keys: readonly EncryptionKey[]) {
    if (!keys.length) throw new TypeError('AesGcmCodec needs at least one key');
    for (const k of keys) {
      if (k.key.length !== 32) throw new TypeError(`encryption key '${k.id}' must be 32 bytes`);
    }
    this.current = keys[0]!;
    this.keys = new Map(keys.map((k) => [k.id, k.key]));
  }

  get keyId(): string {
    return this.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => (text(p.metadata?.[METADATA_ENCODING_KEY]) === ENCRYPTED_ENCODING ? this.decrypt(p) : p));
  }

  private encrypt(payload: Payload): Payload {
    const plain = PayloadProto.encode(payload).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
      metadata: {
        [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA]: utf8(this.current.id),
      },
      data: new Uint8Array(Buffer.concat([iv, body, cipher.getAuthTag()])),
    };
  }

  private decrypt(payload: Payload): Payload {
    const keyId = text(payload.metadata?.[KEY_ID_METADATA]);
    if (!keyId) throw new CodecKeyError(`encrypted payload has no '${KEY_ID_METADATA}' metadata`);
    const key = this.keys.get(keyId);
    if (!key) {
      // The id comes from whoever sent the payload: shown bounded and printable.
      const shown = (keyId.length > 64 ? `${keyId.slice(0, 64)}…` : keyId).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
      throw new CodecKeyError(
        `encrypted payload uses key id '${shown}', which is not among the configured keys (${[...this.keys.keys()].join(', ')}): add it to OPTIINFRA_ENCRYPTION_KEYS`,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) throw new ValueError(`encrypted payload (key '${keyId}') is too short`);
    const iv = data.subarray(0, IV_BYTES);
    const tag = data.subarray(data.length - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAuthTag(tag);
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new ValueError(
        `encrypted payload (key '${keyId}') failed authentication: it was altered or encrypted with another key of that id`,
      );
    }
    return PayloadProto.decode(plain) as Payload;
  }
}

/** The codec for a config, or undefined when no keys are configured. */
export function codecFor(config: Config): AesGcmCodec | undefined {
  return config.encryption ? new AesGcmCodec(config.encryption.keys) : undefined;
}

/**
 * The data converter for clients and workers: the codec, and failure messages and stack traces
 * moved into an encoded (so encrypted) payload. Undefined (the SDK's defaults) without keys.
 */
export function dataConverterFor(config: Config): DataConverter | undefined {
  const codec = codecFor(config);
  return codec ? { payloadCodecs: [codec], failureConverterPath } : undefined;
}
