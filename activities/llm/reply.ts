/**
 * Reply validation: the first choice's content parsed as JSON (out of a Markdown fence when the
 * request had no response format) and validated with the call's schema. A reply cut at the
 * completion limit (`finish_reason: length`) is reported as truncated, so the caller can retry
 * it with a larger budget (https://console.groq.com/docs/reasoning).
 */
import type Groq from 'groq-sdk';
import type { ZodType } from 'zod';
import { formatZodError } from '../../common/types.js';
import { truncate } from './errors.js';
import type { Format } from './model-traits.js';

/** Parse and validate one answer. */
export function checkReply(
  completion: Groq.Chat.ChatCompletion,
  schema: ZodType,
  format: Format,
  maxCompletion: number,
): { ok: true; value: unknown } | { ok: false; truncated: boolean; why: string } {
  const choices = (completion as { choices?: unknown }).choices;
  if (!Array.isArray(choices) || choices.length === 0) return { ok: false, truncated: false, why: 'the reply has no choices' };
  const choice = choices[0] as Groq.Chat.ChatCompletion.Choice | undefined;
  const content = choice?.message?.content;
  const finish = choice?.finish_reason;
  const cut = finish === 'length';
  const finishNote = cut
    ? ` (finish_reason=length: the reply hit the ${maxCompletion}-token limit)`
    : finish && finish !== 'stop'
      ? ` (finish_reason=${String(finish)})`
      : '';
  if (typeof content !== 'string' || content.trim() === '') {
    return { ok: false, truncated: cut, why: `the reply content is empty${finishNote}` };
  }
  const text = format === 'plain' ? unfence(content) : content;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      truncated: cut,
      why: `the reply is not valid JSON (${content.length} characters; ${truncate(why, 120)})${finishNote}`,
    };
  }
  const checked = schema.safeParse(parsed);
  if (!checked.success) {
    return {
      ok: false,
      truncated: cut,
      why: `the reply does not match the expected schema: ${truncate(formatZodError(checked.error), 500)}${finishNote}`,
    };
  }
  return { ok: true, value: checked.data };
}

/** A reply without response format may wrap its JSON in a Markdown fence. */
function unfence(s: string): string {
  const m = /```(?:json)?\s*([\s\S]*?)```/i.exec(s);
  return (m ? m[1]! : s).trim();
}
