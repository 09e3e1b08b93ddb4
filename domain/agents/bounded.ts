/**
 * Bounds on what an agent's analysis passes on. The analysis crosses Temporal (an activity
 * result, then the agent's and the review's workflow results, the narrative's and the record's
 * inputs), where one payload may hold at most 2 MB; a bill of thousands of resources or hundreds
 * of deployments yields thousands of findings (3,000 idle GPUs: 6,700 findings, 6.4 MB). The
 * most severe findings are kept, up to MAX_FINDINGS and MAX_FINDINGS_BYTES, and what was left
 * out is counted by kind. Totals are computed from every finding before the cut,
 * so they stay whole. Warnings are bounded too (MAX_WARNINGS lines of MAX_WARNING_CHARS). Pure,
 * workflow-safe.
 */
import { bySeverity } from './ordering.js';
import type { AgentAnalysis, Finding } from './types.js';

/** Findings one analysis passes on at most. */
export const MAX_FINDINGS = 200;
/** Bytes (UTF-8 JSON) of the findings one analysis passes on at most: four agents stay far below 2 MB. */
export const MAX_FINDINGS_BYTES = 256 * 1024;

/** Warnings one analysis passes on at most (one per failed source could be thousands), and characters of each. */
export const MAX_WARNINGS = 20;
export const MAX_WARNING_CHARS = 500;
/** Failed sources an analysis's warnings name (the others are counted). */
export const SOURCE_ERRORS_LISTED = 5;

/** At most `max` lines, each clipped, and a last line counting the rest. */
export function boundLines(lines: readonly string[], max = MAX_WARNINGS): string[] {
  const clip = (l: string) => (l.length > MAX_WARNING_CHARS ? `${l.slice(0, MAX_WARNING_CHARS)}…` : l);
  if (lines.length <= max) return lines.map(clip);
  const rest = lines.length - (max - 1);
  return [...lines.slice(0, max - 1).map(clip), `… and ${rest.toLocaleString('en-US')} more like these.`];
}

/** UTF-8 length of a string (no Node or DOM API: workflow-safe). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * The analysis with its findings cut to the bounds, most severe first (the given order within a
 * severity). When some are left out, `notListed` says how many of each kind, and so does a
 * warning. An analysis within the bounds is returned as it is.
 */
export function boundAnalysis(
  a: AgentAnalysis,
  limits: { maxFindings?: number; maxBytes?: number } = {},
): AgentAnalysis & { notListed?: string } {
  const maxFindings = limits.maxFindings ?? MAX_FINDINGS;
  const maxBytes = limits.maxBytes ?? MAX_FINDINGS_BYTES;
  const sizes = a.findings.map((f) => utf8Length(JSON.stringify(f)) + 1);
  const total = sizes.reduce((x, y) => x + y, 0);
  if (a.findings.length <= maxFindings && total <= maxBytes) return { ...a, warnings: boundLines(a.warnings) };
  const sizeOf = new Map(a.findings.map((f, i) => [f, sizes[i]!]));
  const kept: Finding[] = [];
  const dropped: Finding[] = [];
  let bytes = 2;
  for (const f of bySeverity(a.findings)) {
    const n = sizeOf.get(f)!;
    if (kept.length < maxFindings && bytes + n <= maxBytes) {
      kept.push(f);
      bytes += n;
    } else dropped.push(f);
  }
  const byKind = new Map<string, number>();
  for (const f of dropped) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  const kinds = [...byKind.entries()].map(([k, n]) => `${k} ${n.toLocaleString('en-US')}`).join(', ');
  const notListed =
    `${dropped.length.toLocaleString('en-US')} more finding${dropped.length === 1 ? '' : 's'} not listed (${kinds}); ` +
    `the ${kept.length} most severe are, and the totals count them all.`;
  return { ...a, findings: kept, warnings: [...boundLines(a.warnings, MAX_WARNINGS - 1), notListed], notListed };
}
