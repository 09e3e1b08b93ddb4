/**
 * Interaction sources behind one interface: JSONL files (a file or a directory of files) and an
 * HTTP endpoint. A source returns pages of validated records plus every record it had to reject,
 * with a position and a reason; it throws `SourceError` only when the source itself cannot be
 * read. The record format and both protocols are described in docs/record-format.md.
 *
 * This module holds a source's configuration and the factory; the interface is in
 * source-contract.ts, the sources in jsonl-source.ts and http-source.ts.
 */
import { z } from 'zod';
import { timestampWindow } from '../../domain/collector/record.js';
import { formatZodError, httpUrlSchema } from '../../common/types.js';
import { HTTP_TIMEOUT_MS, HttpSource } from './http-source.js';
import { createJsonlSource } from './jsonl-source.js';
import { SourceError, type InteractionSource } from './source-contract.js';

export const sourceConfigSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('jsonl'), path: z.string().min(1) }),
  z.object({
    type: z.literal('http'),
    url: httpUrlSchema('source url'),
    headers: z.record(z.string(), z.string()).optional(),
  }),
]);
export type SourceConfig = z.output<typeof sourceConfigSchema>;

export interface SourceOptions {
  /** HTTP request timeout in milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Accepted record timestamps, epoch ms (default: timestampWindow(now)). */
  window?: { oldest: number; newest: number };
}

export function createSource(cfg: SourceConfig, deployment: string, opts: SourceOptions = {}): InteractionSource {
  const parsed = sourceConfigSchema.safeParse(cfg);
  if (!parsed.success) {
    // Never echo the config itself: headers may hold tokens.
    throw new SourceError(`invalid source config: ${formatZodError(parsed.error)}`);
  }
  const c = parsed.data;
  const window = opts.window ?? timestampWindow(Date.now());
  switch (c.type) {
    case 'jsonl':
      return createJsonlSource(c.path, deployment, window);
    case 'http':
      return new HttpSource(c.url, c.headers ?? {}, deployment, opts.timeoutMs ?? HTTP_TIMEOUT_MS, window);
  }
}
