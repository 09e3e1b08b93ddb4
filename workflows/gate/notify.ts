/**
 * gateNotifications: tells the deployment's notification targets what a gate decided. Started
 * by the gate as an abandoned child, so a slow or unreachable receiver never holds the gate or
 * changes its decision; each delivery is retried by Temporal for several minutes.
 */
import { patched, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { NotifyActivities } from '../../activities/gate/notify.js';
import { raise, rootCause } from '../../common/failures.js';
import { formatZodError } from '../../common/types.js';
import { gateNoticeSchema, type GateNotice } from '../../domain/gate/notify.js';
import { gateOptions, notifyOptions } from '../options.js';

/** Patch id: a notification given up after its retries is recorded as failed. */
export const GIVE_UP_RECORDED = 'notification-give-up-recorded';

const lookup = proxyActivities<NotifyActivities>(gateOptions);
const send = proxyActivities<NotifyActivities>(notifyOptions);

export async function gateNotifications(raw: GateNotice): Promise<Array<{ target: number; kind: string; status: string; detail: string }>> {
  const parsed = gateNoticeSchema.safeParse(raw);
  if (!parsed.success) raise('InvalidInput', formatZodError(parsed.error));
  const notice = raw;
  const targets = await lookup.listNotifyTargets(notice.deployment);
  const out = await Promise.all(
    targets.map(async (t) => {
      try {
        return { target: t.index, kind: t.kind, ...(await send.deliverNotification({ notice, target: t.index })) };
      } catch (e) {
        let detail = rootCause(e).message;
        // Its retries ran out: the stored row says so too (it stayed 'pending' before this patch).
        if (patched(GIVE_UP_RECORDED)) {
          detail = await lookup.giveUpNotification({ gateId: notice.gateId, target: t.index, why: `given up: ${detail}` });
        }
        return { target: t.index, kind: t.kind, status: 'failed', detail };
      }
    }),
  );
  setCurrentDetails(`${out.filter((o) => o.status === 'delivered').length} of ${out.length} notifications delivered`);
  return out;
}
