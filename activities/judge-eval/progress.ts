/**
 * The benchmark's progress on stderr: one self-updating line when stderr is a terminal, plain
 * lines every few seconds otherwise (CI logs), and a last line when the run ends.
 */
import { formatDuration } from '../llm/pacer.js';
import type { Progress } from './runner.js';

const int = (n: number) => Math.round(n).toLocaleString('en-US');

/** `[#######-----------] 420/1,000 42% | cached 300 | failed 2 | 3.1/s | eta 38s`. */
export function progressLine(p: Progress, elapsedMs: number, width = 24): string {
  const share = p.total ? p.done / p.total : 1;
  const filled = Math.round(share * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const parts = [`${bar} ${int(p.done)}/${int(p.total)} ${Math.floor(share * 100)}%`];
  if (p.fromCache) parts.push(`cached ${int(p.fromCache)}`);
  if (p.failed) parts.push(`failed ${int(p.failed)}`);
  const judged = p.done - p.fromCache;
  if (judged > 0 && elapsedMs > 0) {
    const rate = judged / (elapsedMs / 1000);
    parts.push(`${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)}/s`);
    if (p.done < p.total) parts.push(`eta ${formatDuration(((p.total - p.done) / rate) * 1000)}`);
  }
  if (p.usage.calls) parts.push(`${int(p.usage.calls)} calls`);
  return parts.join(' | ');
}

export interface ProgressReporter {
  update(p: Progress): void;
  /** The last line (and, on a terminal, the end of the self-updating one). */
  end(): void;
}

export function progressReporter(
  stream: { write(s: string): unknown; isTTY?: boolean },
  o: { label?: string; intervalMs?: number; now?: () => number } = {},
): ProgressReporter {
  const now = o.now ?? (() => performance.now());
  const tty = stream.isTTY === true;
  const every = tty ? 100 : (o.intervalMs ?? 10_000);
  const label = o.label ? `${o.label} ` : '';
  const started = now();
  let last: Progress | undefined;
  let shownAt = -Infinity;
  let shown = '';
  const show = (final: boolean) => {
    if (!last) return;
    const line = label + progressLine(last, now() - started);
    if (tty) stream.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else if (line !== shown) stream.write(`${line}\n`);
    shown = line;
    shownAt = now();
  };
  return {
    update(p) {
      last = p;
      if (now() - shownAt >= every) show(false);
    },
    end() {
      show(true);
    },
  };
}
