/**
 * Heartbeats of long activities (collection of a source, an agent's analysis): each a no-op when
 * the function runs outside an activity (called directly, as tests and scripts do).
 */
import { Context } from '@temporalio/activity';

/** The running activity's context, if any (none when an analysis is called directly). */
function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Heartbeat with progress when running as an activity (a no-op when called directly). */
export function heartbeat(details: Record<string, unknown>): void {
  activityContext()?.heartbeat(details);
}

/** How often a read that takes long heartbeats while it waits. */
export const WAITING_HEARTBEAT_MS = 20_000;

/**
 * `read()`, heartbeating `details` when it starts and every WAITING_HEARTBEAT_MS while it runs,
 * with the seconds waited: one aggregation over a large window may take minutes, and its
 * heartbeats say which one the analysis is waiting for.
 */
export async function whileReading<T>(details: Record<string, unknown>, read: () => Promise<T>): Promise<T> {
  const ctx = activityContext();
  if (!ctx) return read();
  const started = Date.now();
  ctx.heartbeat(details);
  const timer = setInterval(
    () => ctx.heartbeat({ ...details, waitingSeconds: Math.round((Date.now() - started) / 1000) }),
    WAITING_HEARTBEAT_MS,
  );
  try {
    return await read();
  } finally {
    clearInterval(timer);
  }
}
