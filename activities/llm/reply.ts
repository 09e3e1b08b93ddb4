/**
 * Reply validation: the first choice's content parsed as JSON (after a leading `<think>` block
 * of reasoning, out of a Markdown fence when the request had no response format, or when the
 * whole reply is one fence) and validated with the
 * call's schema; a body that is no chat completion (none, text, an error object) is said so. A reply cut at the
 * completion limit (`finish_reason: length`) is reported as truncated, so the caller can retry
 * it with a larger budget (https://console.groq.com/docs/reasoning).
 */
import type Groq from 'groq-sdk';
import type { ZodType } from 'zod';
import { redact } from '../../common/secrets.js';
import { formatZodError } from '../../common/types.js';
import { truncate } from './errors.js';
import type { Format } from './model-traits.js';

/** Parse and validate one answer: `completion` is whatever the SDK made of the response body. */
export function checkReply(
  completion: unknown,
  schema: ZodType,
  format: Format,
  maxCompletion: number,
  secrets: string[] = [],
): { ok: true; value: unknown } | { ok: false; truncated: boolean; why: string } {
  const notCompletion = notACompletion(completion, secrets);
  if (notCompletion) return { ok: false, truncated: false, why: notCompletion };
  const choices = (completion as { choices?: unknown }).choices;
  if (!Array.isArray(choices) || choices.length === 0) return { ok: false, truncated: false, why: 'the reply has no choices' };
  const choice = choices[0] as Groq.Chat.ChatCompletion.Choice | undefined;
  const content = choice?.message?.content;
  const finish = choice?.finish_reason;
  const cut = finish === 'length';
  const finishNote = cut
    ? ` (finish_reason=length: the reply hit the ${maxCompletion}-token limit)`
    : finish && finish !== 'stop'
      ? ` (finish_reason=${truncate(String(finish), 40)})`
      : '';
  if (typeof content !== 'string' || content.trim() === '') {
    return { ok: false, truncated: cut, why: `the reply content is empty${finishNote}` };
  }
  const answer = afterReasoning(content);
  if (answer === undefined) {
    return {
      ok: false,
      truncated: cut,
      why: `the reply holds only the model's reasoning (<think> without an answer after it)${finishNote}`,
    };
  }
  let parsed: unknown;
  try {
    parsed = parseJson(answer, format);
  } catch (e) {
    return {
      ok: false,
      truncated: cut,
      why: `the reply is not valid JSON (${content.length} characters; ${truncate(parseError(e), 120)})${finishNote}`,
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

/**
 * Why a response body is not a chat completion at all, or undefined when it is an object: no
 * body (204, an empty or `null` JSON body), a text body (a proxy's HTML error page, an SSE stream
 * nobody asked for: the SDK hands over non-JSON bodies as text), or an `error` object sent with
 * status 200.
 */
function notACompletion(body: unknown, secrets: string[]): string | undefined {
  if (body === undefined || body === null) return 'the answer has no body (HTTP 200 without a chat completion)';
  if (typeof body === 'string') {
    const sse = /^\s*(data|event):/m.test(body.slice(0, 200));
    return `the answer is ${body.length} characters of ${sse ? 'an event stream' : 'text'}, not a JSON chat completion (a proxy's page in front of Groq? check GROQ_BASE_URL)`;
  }
  if (typeof body !== 'object' || Array.isArray(body))
    return `the answer is a JSON ${Array.isArray(body) ? 'array' : typeof body}, not a chat completion`;
  const err = (body as { error?: unknown; choices?: unknown }).error;
  if (err !== undefined && err !== null && !Array.isArray((body as { choices?: unknown }).choices)) {
    const m = typeof err === 'string' ? err : typeof err === 'object' ? (err as { message?: unknown }).message : undefined;
    return `the answer is an error with HTTP 200${typeof m === 'string' && m.trim() ? `: ${truncate(redact(m, secrets), 300)}` : ''}`;
  }
  return undefined;
}

/**
 * The answer after a leading reasoning block: a reasoning model served without a reasoning parser
 * writes `<think>…</think>` before its answer (Groq's `reasoning_format: raw`,
 * https://console.groq.com/docs/reasoning; an OpenAI-compatible server such as vLLM without
 * `--reasoning-parser`). Undefined when the block never ends or nothing follows it. Only a block
 * at the very start counts: a `<think>` later in the text is part of the answer.
 */
function afterReasoning(content: string): string | undefined {
  const t = content.trimStart();
  if (!/^<think>/i.test(t)) return content;
  const end = t.toLowerCase().indexOf('</think>');
  if (end < 0) return undefined;
  const rest = t.slice(end + '</think>'.length);
  return rest.trim() === '' ? undefined : rest;
}

/**
 * The content as JSON. Without a response format the JSON may sit in a Markdown fence anywhere
 * in the text; with one, only a reply that is one fence and nothing else is unwrapped (a server
 * or model that fences its JSON object answers the same way on a retry). Prose around JSON is
 * not searched for an object: an example inside an explanation is no verdict.
 */
function parseJson(content: string, format: Format): unknown {
  if (format === 'plain') return JSON.parse(unfence(content));
  try {
    return JSON.parse(content);
  } catch (e) {
    const inner = wholeFence(content);
    if (inner === undefined) throw e;
    return JSON.parse(inner);
  }
}

/**
 * The text inside a reply that is one Markdown fence and nothing else (```` ```json … ``` ````,
 * blanks around it and inside it dropped), or undefined. Cut by hand: the regex this replaces,
 * `^\s*```(?:json)?\s*([\s\S]*?)\s*```\s*$`, took cubic time on a fence followed by blanks.
 */
function wholeFence(content: string): string | undefined {
  const t = content.trim();
  if (t.length < 6 || !t.startsWith('```') || !t.endsWith('```')) return undefined;
  const inner = t.slice(3, -3);
  return (/^json/i.test(inner) ? inner.slice(4) : inner).trim();
}

/** JSON.parse's message without the excerpt of the text V8 quotes (model output is not for messages). */
function parseError(e: unknown): string {
  const why = e instanceof Error ? e.message : String(e);
  return why.replace(/,\s*".*"(\.\.\.)?\s+is not valid JSON$/s, '');
}

/**
 * A reply without response format may wrap its JSON in a Markdown fence. The blanks after the
 * opening fence are trimmed with the rest (a `\s*` before the lazy group took quadratic time on
 * a fence followed by blanks).
 */
function unfence(s: string): string {
  const m = /```(?:json)?([\s\S]*?)```/i.exec(s);
  return (m ? m[1]! : s).trim();
}
