/**
 * Hostile notices and notification policies, pure: mrkdwn control sequences, very long texts,
 * Slack's error bodies, retry delays, and how a target URL is named.
 */
import { describe, expect, it } from 'vitest';
import { opaqueUrl, redact, urlSecretParts } from '../../common/secrets.js';
import {
  clipText,
  gateNoticeSchema,
  MAX_NOTIFY_TARGETS,
  NOTIFY_BACKOFF,
  noticeBody,
  noticeOf,
  notifyRetryDelayMs,
  SLACK_TEXT_MAX,
  slackErrorOf,
  type GateNotice,
} from '../../domain/gate/notify.js';
import type { GateResult } from '../../domain/gate/types.js';

const EVIL = '<!channel> <@U123> <http://evil|click> &amp;';

const notice = (over: Partial<GateNotice> = {}): GateNotice => ({
  gateId: 'gate/d/v2/1',
  deployment: 'd',
  baselineVersion: 'v1',
  candidateVersion: 'v2',
  events: ['override', 'rollback-failed'],
  decision: 'REJECT',
  effectiveDecision: 'REJECT',
  reason: EVIL,
  summary: EVIL,
  rollback: { status: 'failed', detail: EVIL },
  override: { action: 'reject', by: EVIL, reason: EVIL },
  ...over,
});

const result = (over: Partial<GateResult>): GateResult =>
  ({
    gateId: 'gate/d/v2/1',
    deployment: 'd',
    baselineVersion: 'v1',
    candidateVersion: 'v2',
    decision: 'REJECT',
    effectiveDecision: 'REJECT',
    reason: 'r',
    evidence: {},
    explanation: { summary: 's' },
    rollback: { status: 'failed', detail: 'd' },
    ...over,
  }) as unknown as GateResult;

describe('hostile notices', () => {
  // Pins behaviour that already held: every text is escaped, nothing can mention, ping or link.
  it('a Slack text cannot mention, ping or link whatever the gate, override or rollback texts hold', () => {
    const text = String(JSON.parse(noticeBody('slack', notice(), 'k', 't')).text);
    expect(text).not.toMatch(/[<>]/);
    expect(text).toContain('&lt;!channel&gt; &lt;@U123&gt; &lt;http://evil|click&gt; &amp;amp;');
    // A generic webhook gets the texts as they are (JSON, not mrkdwn).
    expect(JSON.parse(noticeBody('webhook', notice(), 'k', 't')).reason).toBe(EVIL);
  });

  // Failed before: a Slack text grew with the notice (here about 400,000 characters after escaping).
  it('a Slack text stays under Slack limits, every part still present, no entity or surrogate cut', () => {
    const long = '<'.repeat(90_000);
    const n = notice({ reason: long, summary: long, rollback: { status: 'failed', detail: `${'😀'.repeat(60_000)}` } });
    const text = String(JSON.parse(noticeBody('slack', n, 'k', 't')).text);
    expect(text.length).toBeLessThanOrEqual(SLACK_TEXT_MAX);
    expect(text).toMatch(/^OptiInfra deploy gate gate\/d\/v2\/1: d v2 \(baseline v1\)/);
    expect(text).toContain('Override: reject by');
    expect(text).not.toMatch(/&l?…|&lt?…/);
    expect(text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(clipText('ab😀', 3)).toBe('ab…');
  });

  // Failed before: a result whose texts exceed the notice schema made the notification child
  // fail its own input check, so a failed rollback was never notified.
  it('a notice of a result with huge texts passes the notice schema (clipped, never refused)', () => {
    const huge = 'x'.repeat(250_000);
    const n = noticeOf(
      result({
        reason: huge,
        explanation: { summary: huge } as GateResult['explanation'],
        rollback: { status: 'failed', detail: huge } as GateResult['rollback'],
        override: { action: 'reject', by: 'oncall', reason: huge, at: 'now' } as GateResult['override'],
      }),
    );
    expect(gateNoticeSchema.safeParse(n).success).toBe(true);
    expect(n.rollback.detail.endsWith('…')).toBe(true);
  });

  // Failed before (no such classification): Slack's permanent error bodies are recognised, a success is not one.
  it("Slack's error bodies are recognised; 'ok' and other bodies are not errors", () => {
    for (const e of ['invalid_payload', 'no_text', 'no_service', 'channel_is_archived', 'action_prohibited']) {
      expect(slackErrorOf(e)).toBe(e);
      expect(slackErrorOf(`${e}\n`)).toBe(e);
    }
    expect(slackErrorOf('ok')).toBeUndefined();
    expect(slackErrorOf('')).toBeUndefined();
    expect(slackErrorOf('{"success":true}')).toBeUndefined();
  });

  // Failed before (Temporal's backoff has no jitter): delays are jittered and bounded.
  it('retry delays are jittered, exponential, bounded, and never sooner than a retry-after', () => {
    expect(notifyRetryDelayMs(1, undefined, 0)).toBe(1000);
    expect(notifyRetryDelayMs(1, undefined, 1)).toBe(2000);
    expect(notifyRetryDelayMs(3, undefined, 0.5)).toBe(6000);
    for (let a = 1; a <= 50; a++) {
      for (const r of [0, 0.3, 1]) expect(notifyRetryDelayMs(a, undefined, r)).toBeLessThanOrEqual(NOTIFY_BACKOFF.maxMs);
    }
    expect(new Set([0, 0.25, 0.5, 0.75].map((r) => notifyRetryDelayMs(4, undefined, r))).size).toBe(4);
    expect(notifyRetryDelayMs(1, 1000, 0)).toBe(1000);
    expect(notifyRetryDelayMs(1, 1000, 1)).toBe(1200);
    expect(notifyRetryDelayMs(1, 86_400_000, 1)).toBe(NOTIFY_BACKOFF.maxMs);
    expect(notifyRetryDelayMs(Number.NaN, Number.NaN, Number.NaN)).toBeLessThanOrEqual(2000);
  });

  // Failed before (the path, a Slack webhook's token, was shown): a target URL is named by its origin only.
  it('a target URL is named by its origin; its token-bearing parts are redacted anywhere', () => {
    const url = 'https://hooks.example.com/services/T0/B0/SeCrEtToKeN123?token=qqq12345';
    expect(opaqueUrl(url)).toBe('https://hooks.example.com/…');
    expect(opaqueUrl('http://h:1')).toBe('http://h:1');
    const said = `posting to ${url} failed; path /services/T0/B0/SeCrEtToKeN123, query token=qqq12345`;
    const out = redact(said, urlSecretParts(url));
    expect(out).not.toMatch(/SeCrEtToKeN123|qqq12345/);
  });
});

describe('notification targets without end', () => {
  // Pins: a gate notifies every target at once, so their number is bounded. Failed before: any
  // number of targets was stored (and each notified at once), the same receiver twice got every
  // notice twice.
  const slack = (i: number) => `https://hooks.slack.com/services/T0/B0/secret${i}`;

  it('more than MAX_NOTIFY_TARGETS targets, or one given twice, are refused before anything is stored', async () => {
    const { runCli } = await import('../helpers/cli.js');
    const many = Array.from({ length: MAX_NOTIFY_TARGETS + 1 }, (_, i) => ['--slack', slack(i)]).flat();
    const r = await runCli(['deployment', 'notify', 'chat', ...many]);
    expect(r.code).toBe(3);
    expect(r.out).toContain(`21 notification targets given; at most ${MAX_NOTIFY_TARGETS}`);
    const twice = await runCli([
      'deployment',
      'notify',
      'chat',
      '--webhook',
      'https://hooks.example.com/a?token=s3',
      '--webhook',
      'https://hooks.example.com/a?token=s3',
    ]);
    expect(twice.code).toBe(3);
    expect(twice.out).toContain('notification target given twice: https://hooks.example.com/…');
    expect(twice.out).not.toContain('s3');
    // Both refused before connecting: the unreachable database was never asked.
    expect(`${r.out}${twice.out}`).not.toMatch(/cannot use PostgreSQL|ECONNREFUSED/);
  });

  it('a stored row holding hundreds of targets is read as its first MAX_NOTIFY_TARGETS', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => ({ kind: 'slack', url: slack(i) }));
    const db = { query: async () => ({ rows: [{ notify: rows }] }) };
    const { createNotifyActivities } = await import('../../activities/gate/notify.js');
    const acts = createNotifyActivities({ config: { groq: {}, webhook: {} }, db } as unknown as Parameters<
      typeof createNotifyActivities
    >[0]);
    const listed = await acts.listNotifyTargets('chat');
    expect(listed).toHaveLength(MAX_NOTIFY_TARGETS);
    expect(listed.at(-1)).toEqual({ index: MAX_NOTIFY_TARGETS - 1, kind: 'slack' });
  });
});
