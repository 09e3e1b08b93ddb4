/**
 * Notifications of gate outcomes to the deployment's targets (Slack-compatible incoming
 * webhooks, generic JSON webhooks), signed like the rollback webhook, one idempotency key per
 * gate and target: delivered at least once, and never again once delivered. Target URLs (often
 * secrets themselves) stay in PostgreSQL: workflows know targets by index only.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { opaqueUrl, redact, secretsOf, urlSecretParts } from '../../common/secrets.js';
import { failure } from '../../common/failures.js';
import {
  noticeBody,
  notifyRetryDelayMs,
  MAX_NOTIFY_TARGETS,
  notifyTargetSchema,
  slackErrorOf,
  type GateNotice,
  type NotifyTarget,
} from '../../domain/gate/notify.js';
import type { ActivityDeps } from '../deps.js';
import { getNotifyTargets } from '../storage/postgres/deployments.js';
import * as gates from '../storage/postgres/gates.js';
import { postSigned } from './webhook.js';

const NOTIFY_TIMEOUT_MS = 15_000;

export function createNotifyActivities(deps: ActivityDeps) {
  const { config, db } = deps;

  /** The deployment's valid targets, the first MAX_NOTIFY_TARGETS (rows written by hand may hold more). */
  async function targets(deployment: string): Promise<NotifyTarget[]> {
    return (await getNotifyTargets(db, deployment))
      .flatMap((t) => {
        const p = notifyTargetSchema.safeParse(t);
        return p.success ? [p.data] : [];
      })
      .slice(0, MAX_NOTIFY_TARGETS);
  }

  /** The deployment's notification targets, by index and kind (no URL). */
  async function listNotifyTargets(deployment: string): Promise<Array<{ index: number; kind: NotifyTarget['kind'] }>> {
    return (await targets(deployment)).map((t, index) => ({ index, kind: t.kind }));
  }

  /** Deliver one gate's notice to one target (a delivered notice is not sent again). */
  async function deliverNotification(input: {
    notice: GateNotice;
    target: number;
  }): Promise<{ status: 'delivered' | 'failed'; detail: string }> {
    const n = input.notice;
    const target = (await targets(n.deployment))[input.target];
    if (!target) throw failure('NotifyRejected', `notification target ${input.target} of '${n.deployment}' no longer exists`);
    const key = notificationKey(n.gateId, input.target);
    const prior = await gates.claimNotification(db, {
      idempotencyKey: key,
      gateId: n.gateId,
      deployment: n.deployment,
      targetKind: target.kind,
      events: n.events,
    });
    if (prior.status === 'delivered') return { status: 'delivered', detail: prior.detail };
    // The whole URL is treated as a secret: a Slack webhook's path is its token.
    const secrets = [...secretsOf(config), ...urlSecretParts(target.url)];
    try {
      const r = await postSigned({
        url: target.url,
        rawBody: noticeBody(target.kind, n, key, new Date().toISOString()),
        idempotencyKey: key,
        what: `${target.kind} notification`,
        setting: "the deployment's --notify-* URL",
        refusedHint: 'fix the URL with optiinfra deployment notify',
        webhookSecret: config.webhookSecret,
        timeoutMs: NOTIFY_TIMEOUT_MS,
        secrets,
        failureType: { retry: 'NotifyUnavailable', refuse: 'NotifyRejected' },
        describe: opaqueUrl,
        refuseUnverifiedTls: true,
        ...(target.kind === 'slack'
          ? {
              checkAnswer: (body: string) => {
                const e = slackErrorOf(body);
                return e === undefined ? undefined : `Slack answered '${e}'`;
              },
            }
          : {}),
      });
      await gates.finishNotification(db, key, 'delivered', r.detail);
      return r;
    } catch (e) {
      if (e instanceof ApplicationFailure && e.type === 'NotifyRejected') {
        await gates.finishNotification(db, key, 'failed', e.message);
        return { status: 'failed', detail: e.message };
      }
      // Retried: the reason is kept with the pending row, and the next attempt waits a jittered,
      // bounded delay (the receiver's retry-after when it asked).
      const message = redact(e instanceof Error ? e.message : String(e), secrets);
      await gates.noteNotificationAttempt(db, key, message).catch(() => undefined);
      const asked = e instanceof ApplicationFailure && typeof e.nextRetryDelay === 'number' ? e.nextRetryDelay : undefined;
      throw failure('NotifyUnavailable', message, {
        nextRetryDelay: notifyRetryDelayMs(attemptNumber(), asked, Math.random()),
      });
    }
  }

  /** Record a notification whose retries ran out as failed (the workflow gave up on it); resolves with the stored reason. */
  async function giveUpNotification(input: { gateId: string; target: number; why: string }): Promise<string> {
    return gates.giveUpNotification(db, notificationKey(input.gateId, input.target), redact(input.why, secretsOf(config)));
  }

  return { listNotifyTargets, deliverNotification, giveUpNotification };
}

const notificationKey = (gateId: string, target: number) => `${gateId}/notify/${target}`;

/** This activity attempt's number (1 outside an activity). */
function attemptNumber(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
