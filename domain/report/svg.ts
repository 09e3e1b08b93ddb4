/**
 * Small SVG building blocks for the report's charts: escaping, scales, ticks, axes and paths.
 * Pure; the output is plain SVG markup that needs no script or font from anywhere.
 */

/** Escape text for HTML and SVG content and attribute values. */
export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A coordinate with one decimal. */
export const c = (x: number): string => (Number.isFinite(x) ? (Math.round(x * 10) / 10 + 0).toString() : '0');

/** A linear map of [d0, d1] onto [r0, r1]; an empty domain maps to the middle of the range. */
export function linear(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  if (!(d1 - d0)) return () => (r0 + r1) / 2;
  const k = (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** About `target` round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  // Bounded: far from zero, adding a step that is small against the value may not move it.
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9 && out.length <= 4 * target + 4; v += step)
    out.push(Math.round(v / step) * step);
  return out.map((v) => Number(v.toPrecision(12)));
}

/** Tick steps of a time axis, in seconds. */
const TIME_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 2_592_000,
];

/** About `target` tick times (seconds, on round UTC boundaries) covering [lo, hi]. */
export function timeTicks(lo: number, hi: number, target = 6): { ticks: number[]; step: number } {
  if (!(hi > lo)) return { ticks: [lo], step: 1 };
  const raw = (hi - lo) / Math.max(1, target);
  // Beyond the largest step (30 days), whole multiples of it.
  const longest = TIME_STEPS[TIME_STEPS.length - 1]!;
  const step = TIME_STEPS.find((s) => s >= raw) ?? Math.ceil(raw / longest) * longest;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi && ticks.length <= 4 * target + 4; t += step) ticks.push(t);
  return { ticks, step };
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** A tick label in UTC, as fine as the tick step needs. */
export function timeLabel(t: number, step: number): string {
  const d = new Date(t * 1000);
  const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  const md = `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  if (step < 60) return `${hm}:${pad2(d.getUTCSeconds())}`;
  if (step < 86_400) return d.getUTCHours() === 0 && d.getUTCMinutes() === 0 ? md : hm;
  return step > 2_592_000 ? `${d.getUTCFullYear()}-${md}` : md;
}

/** A time in UTC for prose: "2025-06-01 14:05:09 UTC". */
export function utcText(iso: string | number): string {
  const d = typeof iso === 'number' ? new Date(iso * 1000) : new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A polyline path through the points ("M x y L x y …"), or '' without points. */
export function linePath(points: ReadonlyArray<readonly [number, number]>): string {
  return points.map(([x, y], i) => `${i ? 'L' : 'M'}${c(x)} ${c(y)}`).join('');
}

/** A closed area between an upper and a lower line over the same x values. */
export function areaPath(upper: ReadonlyArray<readonly [number, number]>, lower: ReadonlyArray<readonly [number, number]>): string {
  if (!upper.length) return '';
  return `${linePath(upper)}${[...lower]
    .reverse()
    .map(([x, y]) => `L${c(x)} ${c(y)}`)
    .join('')}Z`;
}

export interface Plot {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** The plot area's edges. */
export const inner = (p: Plot) => ({ x0: p.left, x1: p.width - p.right, y0: p.top, y1: p.height - p.bottom });

/** The opening of a chart's SVG: sized by its view box, titled for screen readers. */
export function svgOpen(p: Plot, title: string, desc = ''): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${p.width} ${p.height}" width="${p.width}" height="${p.height}" role="img">` +
    `<title>${esc(title)}</title>${desc ? `<desc>${esc(desc)}</desc>` : ''}`
  );
}

/** Horizontal grid lines with their labels on the left, and the axis titles. */
export function yAxis(p: Plot, ticks: readonly number[], y: (v: number) => number, label: (v: number) => string, title = ''): string {
  const { x0, x1, y0, y1 } = inner(p);
  const lines = ticks
    .map(
      (v) =>
        `<line class="grid" x1="${c(x0)}" x2="${c(x1)}" y1="${c(y(v))}" y2="${c(y(v))}"/><text class="tick" x="${c(x0 - 6)}" y="${c(y(v) + 4)}" text-anchor="end">${esc(label(v))}</text>`,
    )
    .join('');
  const t = title
    ? `<text class="axis-title" transform="translate(12 ${c((y0 + y1) / 2)}) rotate(-90)" text-anchor="middle">${esc(title)}</text>`
    : '';
  return `<g class="axis y">${lines}${t}</g>`;
}

/** Tick marks and labels under the plot, and the axis title. */
export function xAxis(p: Plot, ticks: readonly number[], x: (v: number) => number, label: (v: number) => string, title = ''): string {
  const { x0, x1, y1 } = inner(p);
  const marks = ticks
    .map(
      (v) =>
        `<line class="tick-mark" x1="${c(x(v))}" x2="${c(x(v))}" y1="${c(y1)}" y2="${c(y1 + 4)}"/><text class="tick" x="${c(x(v))}" y="${c(y1 + 16)}" text-anchor="middle">${esc(label(v))}</text>`,
    )
    .join('');
  const t = title
    ? `<text class="axis-title" x="${c((x0 + x1) / 2)}" y="${c(p.height - 4)}" text-anchor="middle">${esc(title)}</text>`
    : '';
  return `<g class="axis x"><line class="baseline-axis" x1="${c(x0)}" x2="${c(x1)}" y1="${c(y1)}" y2="${c(y1)}"/>${marks}${t}</g>`;
}

/** Colours of series (model versions, agents), in order. */
export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04', '#db2777', '#65a30d'];

/** Colour of a decision. */
export const DECISION_COLOUR: Record<string, string> = {
  APPROVE: '#15803d',
  REJECT: '#b91c1c',
  INCONCLUSIVE: '#b45309',
  ABORTED: '#4b5563',
};
