/** One interaction record as every source delivers it (documented in docs/record-format.md). Pure, workflow-safe. */
import { z } from 'zod';
import { calendarDateExists, idSchema } from '../../common/types.js';

/** A record whose texts exceed this many characters in total is rejected as oversized. */
export const MAX_RECORD_CHARS = 1_000_000;

/**
 * One interaction as every source delivers it (after parsing). Documented in README "Record format".
 */
export const interactionSchema = z.object({
  id: idSchema('id'),
  deployment: idSchema('deployment'),
  model_version: idSchema('model_version'),
  timestamp: z.union([z.string(), z.number()]).transform((v, ctx) => {
    const d = typeof v === 'number' ? new Date(v < 1e12 ? v * 1000 : v) : new Date(v);
    if (Number.isNaN(d.getTime()) || (typeof v === 'string' && !calendarDateExists(v))) {
      ctx.addIssue({ code: 'custom', message: `timestamp '${v}' is not an ISO-8601 date or epoch number` });
      return z.NEVER;
    }
    return d.toISOString();
  }),
  prompt: z.string().min(1, { message: 'prompt must not be empty' }),
  response: z.string(),
  context: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type Interaction = z.output<typeof interactionSchema>;
