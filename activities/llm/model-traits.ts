/**
 * What each model supports (reasoning, response format), the completion tokens allowed for
 * reasoning (https://console.groq.com/docs/reasoning), and the response format a request
 * carries: strict `json_schema`, best-effort `json_schema`, `json_object`, or none (the reply is
 * parsed and validated only). A client lowers its format when Groq says one is unsupported.
 */
import type { ChatCompletionCreateParamsNonStreaming } from 'groq-sdk/resources/chat/completions';
import type { ReasoningEffort } from '../../common/env-schema.js';
import type { strictJsonSchema } from './schema.js';

/**
 * Completion tokens added to the answer budget for the model's reasoning, by effort. Reasoning
 * of a rubric judgement at low effort is typically a few hundred tokens; the allowances leave
 * room for long inputs, and a reply cut at the limit is retried once with twice the budget.
 */
export const REASONING_ALLOWANCE: Record<ReasoningEffort, number> = { low: 512, medium: 2048, high: 6144 };

export type Format = 'strict' | 'schema' | 'object' | 'plain';

export interface ModelTraits {
  /** 'effort': reasoning_effort + include_reasoning; 'hidden': reasoning_format hidden; 'none'. */
  reasoning: 'effort' | 'hidden' | 'none';
  format: Format;
}

/**
 * What a model supports, from Groq's reasoning and structured-outputs pages: gpt-oss reasons
 * with `reasoning_effort` and has strict `json_schema`; Qwen 3 reasons (hidden with
 * `reasoning_format`); Kimi K2 and Llama 4 have best-effort `json_schema`; older Llama, Gemma and
 * Mixtral models only `json_object`. Other models try strict `json_schema` and fall back when
 * Groq says it is unsupported.
 */
export function modelTraits(model: string): ModelTraits {
  const m = model.toLowerCase();
  if (m.startsWith('openai/gpt-oss')) return { reasoning: 'effort', format: 'strict' };
  if (m.startsWith('qwen/qwen3')) return { reasoning: 'hidden', format: 'object' };
  if (m.startsWith('moonshotai/kimi-k2') || m.startsWith('meta-llama/llama-4')) return { reasoning: 'none', format: 'schema' };
  if (/^(llama-3|llama3|gemma|mixtral|allam)/.test(m)) return { reasoning: 'none', format: 'object' };
  return { reasoning: 'none', format: 'strict' };
}

const ORDER: Format[] = ['strict', 'schema', 'object', 'plain'];

/** The lower (less demanding) of two formats. */
export function lowest(a: Format, b: Format | undefined): Format {
  return b === undefined ? a : ORDER[Math.max(ORDER.indexOf(a), ORDER.indexOf(b))]!;
}

/** The next format down: json_schema → json_object → none. */
export function lower(f: Format): Format {
  return f === 'strict' || f === 'schema' ? 'object' : 'plain';
}

/**
 * The `response_format` of a request in `format`, and the characters its schema adds to the
 * prompt (https://console.groq.com/docs/structured-outputs).
 */
export function responseFormatOf(
  format: Format,
  name: string,
  strict: ReturnType<typeof strictJsonSchema>,
): { param?: ChatCompletionCreateParamsNonStreaming['response_format']; schemaChars?: number } {
  if ((format === 'strict' || format === 'schema') && 'schema' in strict) {
    return {
      param: { type: 'json_schema', json_schema: { name, schema: strict.schema, strict: format === 'strict' } },
      schemaChars: JSON.stringify(strict.schema).length,
    };
  }
  if (format === 'plain') return {};
  return { param: { type: 'json_object' } };
}
