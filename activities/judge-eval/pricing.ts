/**
 * The estimated cost of the benchmark's LLM calls, from token usage and prices per million
 * tokens.
 *
 * Default prices: Groq's on-demand prices of `openai/gpt-oss-20b`, $0.075 per million input
 * tokens and $0.30 per million output tokens, from the price column of Groq's Supported Models
 * page (https://console.groq.com/docs/models; the stored copy read shows the row of the
 * 1,000-tokens-per-second model at "$0.075 input / $0.30 output", which third-party price lists
 * attribute to gpt-oss-20b on Groq). Cached prompt tokens cost half: "reducing ... token costs by
 * 50% for cached portions" (https://console.groq.com/docs/prompt-caching). Groq's pricing page
 * itself (https://groq.com/pricing) could not be read here: check it, and pass
 * --price-input / --price-output / --price-cached when it differs. Reasoning tokens are output
 * tokens (https://console.groq.com/docs/reasoning) and are billed as such.
 */

export interface Prices {
  /** USD per million uncached prompt tokens. */
  inputPerM: number;
  /** USD per million cached prompt tokens. */
  cachedInputPerM: number;
  /** USD per million completion tokens (reasoning included). */
  outputPerM: number;
}

export const DEFAULT_PRICED_MODEL = 'openai/gpt-oss-20b';

export const DEFAULT_PRICES: Prices = { inputPerM: 0.075, cachedInputPerM: 0.0375, outputPerM: 0.3 };

export interface TokenUsage {
  promptTokens: number;
  /** Part of promptTokens. */
  cachedTokens: number;
  /** Reasoning included. */
  completionTokens: number;
}

/** USD: uncached prompt tokens, cached prompt tokens and completion tokens at their prices. */
export function estimateCostUsd(u: TokenUsage, p: Prices): number {
  const cached = Math.min(u.cachedTokens, u.promptTokens);
  return ((u.promptTokens - cached) * p.inputPerM + cached * p.cachedInputPerM + u.completionTokens * p.outputPerM) / 1e6;
}

/**
 * The prices to use: the given ones over the defaults. Without any given price the defaults hold
 * only for the model they are for; for another model the cost is unknown (undefined).
 */
export function pricesFor(model: string, given: Partial<Prices>): Prices | undefined {
  const any = given.inputPerM !== undefined || given.outputPerM !== undefined || given.cachedInputPerM !== undefined;
  if (!any && model !== DEFAULT_PRICED_MODEL) return undefined;
  const inputPerM = given.inputPerM ?? DEFAULT_PRICES.inputPerM;
  return {
    inputPerM,
    outputPerM: given.outputPerM ?? DEFAULT_PRICES.outputPerM,
    // Groq's rule: cached input at half the input price.
    cachedInputPerM: given.cachedInputPerM ?? inputPerM / 2,
  };
}
