/**
 * Groq's plans and their rate limits (GROQ_PLAN; GROQ_RPM/RPD/TPM/TPD override single figures).
 */

export const GROQ_PLANS = ['free', 'developer', 'unlimited'] as const;
export type GroqPlan = (typeof GROQ_PLANS)[number];

/** Requests and tokens per minute and per day; 0 means no limit of that kind. */
export interface RateLimits {
  rpm: number;
  rpd: number;
  tpm: number;
  tpd: number;
}

/**
 * Rate limits of Groq's plans for `openai/gpt-oss-20b` (limits are per organisation and model).
 * - free: 30 RPM, 1K RPD, 8K TPM, 200K TPD, from the table of https://console.groq.com/docs/rate-limits
 *   ("openai/gpt-oss-20b 30 1K 8K 200K").
 * - developer: the same page says paid plans are far higher and sends the organisation to its
 *   limits page (https://console.groq.com/settings/limits) for the exact figures; the figures
 *   here (1K RPM, 500K RPD, 250K TPM, no published daily token cap) are the Developer plan's
 *   customary order of magnitude, not a quotation: set GROQ_RPM/GROQ_RPD/GROQ_TPM/GROQ_TPD to
 *   the limits page's numbers. Replies correct RPD and TPM downwards by themselves: Groq's
 *   `x-ratelimit-limit-requests` is the RPD and `x-ratelimit-limit-tokens` the TPM.
 * - unlimited: no pacing at all (a Groq-compatible server of one's own, or tests).
 * Cached prompt tokens do not count toward the limits (same page).
 */
export const PLAN_LIMITS: Record<GroqPlan, RateLimits> = {
  free: { rpm: 30, rpd: 1_000, tpm: 8_000, tpd: 200_000 },
  developer: { rpm: 1_000, rpd: 500_000, tpm: 250_000, tpd: 0 },
  unlimited: { rpm: 0, rpd: 0, tpm: 0, tpd: 0 },
};
