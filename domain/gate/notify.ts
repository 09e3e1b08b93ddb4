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

export function noticeOf(r: GateResult): GateNotice {
  return {
    gateId: r.gateId,
    deployment: r.deployment,
    baselineVersion: r.baselineVersion,
    candidateVersion: r.candidateVersion,
    events: notifyEvents(r),
    decision: r.decision,
    effectiveDecision: r.effectiveDecision,
    reason: r.reason,
    summary: r.explanation?.summary ?? r.reason,
    rollback: { status: r.rollback.status, detail: r.rollback.detail },
    ...(r.override ? { override: { action: r.override.action, by: r.override.by, reason: r.override.reason } } : {}),
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

export function noticeBody(kind: NotifyTarget['kind'], n: GateNotice, idempotencyKey: string, sentAt: string): string {
  if (kind === 'slack') return JSON.stringify({ text: noticeText(slackNotice(n)) });
  return JSON.stringify({ event: 'gate', ...n, text: noticeText(n), idempotency_key: idempotencyKey, sent_at: sentAt });
}
