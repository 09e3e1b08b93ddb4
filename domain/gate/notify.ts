/**
 * Notifications of a gate's outcome: what happened, in a form for Slack-compatible incoming
 * webhooks (`{"text": ...}`) and for generic JSON webhooks. Pure, workflow-safe.
 */
import { z } from 'zod';
import { httpUrlSchema, idSchema } from '../../common/types.js';
import { DECISIONS, type GateResult } from './types.js';

/** Where a deployment's gate notifications go: Slack-compatible incoming webhooks or generic JSON webhooks. */
export const notifyTargetSchema = z.object({
  kind: z.enum(['slack', 'webhook']),
  url: httpUrlSchema('notification url'),
});
export type NotifyTarget = z.output<typeof notifyTargetSchema>;
/** Notification targets of one deployment at most: a gate sends its notice to each at once. */
export const MAX_NOTIFY_TARGETS = 20;

export const NOTIFY_EVENTS = ['reject', 'inconclusive', 'rollback-failed', 'override'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** What a gate's outcome notifies about (empty: nothing to notify). */
export function notifyEvents(r: Pick<GateResult, 'decision' | 'override' | 'rollback'>): NotifyEvent[] {
  const events: NotifyEvent[] = [];
  if (r.override) events.push('override');
  else if (r.decision === 'REJECT') events.push('reject');
  else if (r.decision === 'INCONCLUSIVE') events.push('inconclusive');
  if (r.rollback.status === 'failed') events.push('rollback-failed');
  return events;
}

/** The facts a notification carries (no interaction text, no secret). */
export interface GateNotice {
  gateId: string;
  deployment: string;
  baselineVersion: string;
  candidateVersion: string;
  events: NotifyEvent[];
  decision: GateResult['decision'];
  effectiveDecision: GateResult['effectiveDecision'];
  reason: string;
  summary: string;
  rollback: { status: string; detail: string };
  override?: { action: string; by: string; reason: string };
}

/** Longest free texts a notice carries (gateNoticeSchema's limits): a longer text is clipped, never refused. */
const NOTICE_TEXT_MAX = 100_000;
const NOTICE_OVERRIDE_REASON_MAX = 10_000;

/**
 * At most `max` characters of `text`, ending in '…' when clipped; a surrogate pair or an HTML
 * entity (as slackEscape writes them) is never cut in two.
 */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, Math.max(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  cut = cut.replace(/&[a-z]{0,3}$/, '');
  return `${cut}…`;
}

export function noticeOf(r: GateResult): GateNotice {
  const clip = (t: string, max = NOTICE_TEXT_MAX) => clipText(t, max);
  return {
    gateId: r.gateId,
    deployment: r.deployment,
    baselineVersion: r.baselineVersion,
    candidateVersion: r.candidateVersion,
    events: notifyEvents(r),
    decision: r.decision,
    effectiveDecision: r.effectiveDecision,
    reason: clip(r.reason),
    summary: clip(r.explanation?.summary ?? r.reason),
    rollback: { status: clip(r.rollback.status, 100), detail: clip(r.rollback.detail) },
    ...(r.override
      ? {
          override: {
            action: clip(r.override.action, 100),
            by: clip(r.override.by, 1000),
            reason: clip(r.override.reason, NOTICE_OVERRIDE_REASON_MAX),
          },
        }
      : {}),
  };
}

const HEADLINE: Record<NotifyEvent, string> = {
  reject: 'rejected',
  inconclusive: 'could not decide',
  'rollback-failed': 'ROLLBACK FAILED',
  override: 'overridden by a human',
};

/** A notice as gateNotifications takes it (the gate starts it; a hand-started one is checked). */
export const gateNoticeSchema = z.object({
  gateId: z.string().min(1).max(1000),
  deployment: idSchema('deployment'),
  baselineVersion: idSchema('baseline version'),
  candidateVersion: idSchema('candidate version'),
  events: z.array(z.enum(NOTIFY_EVENTS)).min(1).max(NOTIFY_EVENTS.length),
  decision: z.enum(DECISIONS),
  effectiveDecision: z.enum(['APPROVE', 'REJECT', 'ABORTED', 'INCONCLUSIVE']),
  reason: z.string().max(100_000),
  summary: z.string().max(100_000),
  rollback: z.object({ status: z.string().max(100), detail: z.string().max(100_000) }),
  override: z.object({ action: z.string().max(100), by: z.string().max(1000), reason: z.string().max(10_000) }).optional(),
});

/** One line for people: which gate, what happened, why, and what was done. */
export function noticeText(n: GateNotice): string {
  const what = n.events.map((e) => HEADLINE[e]).join(', ');
  const override = n.override ? ` Override: ${n.override.action} by ${n.override.by} (${n.override.reason}).` : '';
  const rollback =
    n.rollback.status === 'not-needed'
      ? ''
      : ` Rollback: ${n.rollback.status}${n.rollback.status === 'failed' ? ` (${n.rollback.detail})` : ''}.`;
  return `OptiInfra deploy gate ${n.gateId}: ${n.deployment} ${n.candidateVersion} (baseline ${n.baselineVersion}) ${what} — ${n.decision}, acted on as ${n.effectiveDecision}. ${n.summary}${override}${rollback}`;
}

/** The body posted to a target. */
/** Text for Slack's mrkdwn: `&`, `<` and `>` escaped, so stored text cannot mention, ping or link. */
export const slackEscape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A notice whose every text is escaped for Slack (the events and decisions are the gate's own words). */
export function slackNotice(n: GateNotice): GateNotice {
  return {
    ...n,
    gateId: slackEscape(n.gateId),
    deployment: slackEscape(n.deployment),
    baselineVersion: slackEscape(n.baselineVersion),
    candidateVersion: slackEscape(n.candidateVersion),
    reason: slackEscape(n.reason),
    summary: slackEscape(n.summary),
    rollback: { status: slackEscape(n.rollback.status), detail: slackEscape(n.rollback.detail) },
    ...(n.override
      ? { override: { action: slackEscape(n.override.action), by: slackEscape(n.override.by), reason: slackEscape(n.override.reason) } }
      : {}),
  };
}

/**
 * The longest Slack text sent: Slack cuts a message's text at 40,000 characters and splits long
 * ones; a notice is a headline, the full record stays with the gate.
 */
export const SLACK_TEXT_MAX = 4000;
/** Each free text of a Slack notice, escaped (so one cannot crowd out the others). */
const SLACK_FIELD_MAX = 700;

export function noticeBody(kind: NotifyTarget['kind'], n: GateNotice, idempotencyKey: string, sentAt: string): string {
  if (kind === 'slack') {
    // Escaped first, then clipped: an escaped text is up to five times as long.
    const e = slackNotice(n);
    const f = (t: string) => clipText(t, SLACK_FIELD_MAX);
    const short: GateNotice = {
      ...e,
      reason: f(e.reason),
      summary: f(e.summary),
      rollback: { status: f(e.rollback.status), detail: f(e.rollback.detail) },
      ...(e.override ? { override: { action: f(e.override.action), by: f(e.override.by), reason: f(e.override.reason) } } : {}),
    };
    return JSON.stringify({ text: clipText(noticeText(short), SLACK_TEXT_MAX) });
  }
  return JSON.stringify({ event: 'gate', ...n, text: noticeText(n), idempotency_key: idempotencyKey, sent_at: sentAt });
}

/**
 * Bodies a Slack incoming webhook answers when it did not post the message: some come with a
 * 4xx, some with a 200. None passes by retrying.
 */
export const SLACK_PERMANENT_ERRORS = [
  'invalid_payload',
  'no_text',
  'no_service',
  'no_service_id',
  'no_team',
  'team_disabled',
  'invalid_token',
  'channel_not_found',
  'channel_is_archived',
  'action_prohibited',
  'posting_to_general_channel_denied',
  'too_many_attachments',
  'user_not_found',
  'missing_text_or_fallback_or_attachments',
  'invalid_blocks',
  'invalid_blocks_format',
  'msg_too_long',
] as const;

/** The Slack error an answer's body names (undefined: none, the answer is a success). */
export function slackErrorOf(body: string): string | undefined {
  const t = body.trim().toLowerCase();
  return (SLACK_PERMANENT_ERRORS as readonly string[]).find((e) => t === e || t.startsWith(`${e} `) || t.includes(`"error":"${e}"`));
}

/** Backoff between notification attempts: exponential from 2 s, at most 2 minutes. */
export const NOTIFY_BACKOFF = { initialMs: 2000, maxMs: 120_000 } as const;

/**
 * The wait before the next delivery attempt after attempt `attempt` (1-based) failed: the
 * receiver's retry-after when it asked (at most NOTIFY_BACKOFF.maxMs), else exponential backoff;
 * jittered (between half and all of it, never more than the maximum) so that targets and gates
 * failing together do not retry in step.
 */
export function notifyRetryDelayMs(attempt: number, askedMs: number | undefined, random: number): number {
  const n = Number.isFinite(attempt) && attempt >= 1 ? Math.floor(attempt) : 1;
  const backoff = Math.min(NOTIFY_BACKOFF.initialMs * 2 ** Math.min(n - 1, 30), NOTIFY_BACKOFF.maxMs);
  const r = Number.isFinite(random) ? Math.min(Math.max(random, 0), 1) : 0.5;
  if (askedMs !== undefined && Number.isFinite(askedMs) && askedMs >= 0) {
    // Never sooner than asked; a little later, spread, within the maximum.
    const asked = Math.min(askedMs, NOTIFY_BACKOFF.maxMs);
    return Math.round(Math.min(asked + r * Math.min(asked * 0.2, 5000), NOTIFY_BACKOFF.maxMs));
  }
  return Math.round(backoff / 2 + (r * backoff) / 2);
}
