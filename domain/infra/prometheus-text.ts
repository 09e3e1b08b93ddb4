/**
 * Prometheus' text exposition format (0.0.4) and classic histograms, without I/O:
 *
 * - `parsePrometheusText`: a strict parser of the text format; bad lines are reported with their
 *   line numbers instead of being dropped silently.
 * - `histogramQuantile`: PromQL's `histogram_quantile` on cumulative buckets, for the direct
 *   scrape path (quantiles from bucket deltas between two scrapes).
 * - `bucketsOf`, `bucketDeltas`: a histogram's buckets from scraped samples, and their increase
 *   between two scrapes.
 */

/** `s` on one line, cut to `n` characters, for error messages. */
export function snippet(s: string, n = 120): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n)}...` : one;
}

// ---------------------------------------------------------------------------------------------
// Text exposition format 0.0.4

export interface ParsedSample {
  metric: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface ParseResult {
  samples: ParsedSample[];
  errors: Array<{ line: number; reason: string }>;
  /** Declared `# TYPE`s by family name (counter, gauge, histogram, summary, untyped). */
  types: Record<string, string>;
  /** Declared `# HELP` texts by family name (unescaped). */
  help: Record<string, string>;
  /** Lines that are neither empty nor comments: the denominator of the garbage rule. */
  sampleLines: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const METRIC_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
/** The digits before and after the point are unambiguous (`[0-9]+\.?[0-9]*` took quadratic time on a long run of digits). */
const FLOAT = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
/**
 * `# HELP name text` or `# TYPE name type`: the text after the blanks starts with a non-blank, so
 * the blanks are split one way only (`[ \t]+(.*)` took quadratic time on a line of blanks ending
 * in a line separator that `.` does not match).
 */
const HELP_OR_TYPE = /^#[ \t]+(HELP|TYPE)(?:[ \t]+([^ \t\n\r\u2028\u2029].*)?)?$/;

/** A sample value as Go's strconv.ParseFloat reads it for the text format (decimal, NaN, ±Inf). */
export function parsePromFloat(s: string): number | undefined {
  if (FLOAT.test(s)) return Number(s);
  const l = s.toLowerCase();
  if (l === 'nan') return NaN;
  if (l === '+inf' || l === 'inf' || l === '+infinity' || l === 'infinity') return Infinity;
  if (l === '-inf' || l === '-infinity') return -Infinity;
  return undefined;
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_m, c: string) => (c === 'n' ? '\n' : '\\'));
}

/** The family a sample belongs to, given the declared types (histogram/summary suffixes). */
function familyOf(metric: string, types: Record<string, string>): string {
  if (types[metric] !== undefined) return metric;
  for (const [suffix, kinds] of [
    ['_bucket', ['histogram']],
    ['_sum', ['histogram', 'summary']],
    ['_count', ['histogram', 'summary']],
  ] as const) {
    if (metric.endsWith(suffix)) {
      const base = metric.slice(0, -suffix.length);
      const t = types[base];
      if (t !== undefined && (kinds as readonly string[]).includes(t)) return base;
    }
  }
  return metric;
}

/** Parse one sample line; returns the reason on failure. */
function parseSampleLine(line: string): ParsedSample | string {
  let i = 0;
  const n = line.length;
  const skipWs = (): number => {
    const from = i;
    while (i < n && (line[i] === ' ' || line[i] === '\t')) i++;
    return i - from;
  };
  const m = METRIC_NAME.exec(line);
  if (!m) return `expected a metric name, found '${snippet(line, 40)}'`;
  const metric = m[0];
  i = metric.length;
  const labels: Record<string, string> = {};
  let blanks = skipWs();
  if (line[i] === '{') {
    i++;
    for (;;) {
      skipWs();
      if (line[i] === '}') {
        i++;
        break;
      }
      const ln = LABEL_NAME.exec(line.slice(i));
      if (!ln) return `invalid label name at column ${i + 1}`;
      const name = ln[0];
      i += name.length;
      skipWs();
      if (line[i] !== '=') return `expected '=' after label '${name}'`;
      i++;
      skipWs();
      if (line[i] !== '"') return `expected '"' to open the value of label '${name}'`;
      i++;
      let value = '';
      let closed = false;
      while (i < n) {
        const c = line[i]!;
        if (c === '\\') {
          const e = line[i + 1];
          if (e === '\\') value += '\\';
          else if (e === '"') value += '"';
          else if (e === 'n') value += '\n';
          else return `invalid escape '\\${e ?? ''}' in the value of label '${name}'`;
          i += 2;
          continue;
        }
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        value += c;
        i++;
      }
      if (!closed) return `unterminated value of label '${name}'`;
      if (Object.hasOwn(labels, name)) return `duplicate label '${name}'`;
      labels[name] = value;
      skipWs();
      if (line[i] === ',') {
        i++;
        continue;
      }
      if (line[i] === '}') {
        i++;
        break;
      }
      return `expected ',' or '}' after the value of label '${name}'`;
    }
    blanks = skipWs();
  }
  // At least one blank between the name/labels and the value.
  if (blanks === 0 && i < n) return `expected a blank after '${metric}'`;
  const rest = line.slice(i).trim();
  if (rest === '') return `missing value for '${metric}'`;
  const parts = rest.split(/[ \t]+/);
  if (parts.length > 2) return `unexpected text after the value: '${snippet(parts.slice(2).join(' '), 40)}'`;
  const value = parsePromFloat(parts[0]!);
  if (value === undefined) return `invalid value '${snippet(parts[0]!, 40)}'`;
  const sample: ParsedSample = { metric, labels, value };
  if (parts.length === 2) {
    const ts = parts[1]!;
    if (!/^-?[0-9]{1,19}$/.test(ts)) return `invalid timestamp '${snippet(ts, 40)}'`;
    const t = Number(ts);
    // Beyond what a Date holds (±8.64e15 ms) the sample could not be dated.
    if (!Number.isSafeInteger(t) || Math.abs(t) > 8.64e15) return `timestamp out of range '${ts}'`;
    sample.timestampMs = t;
  }
  return sample;
}

/**
 * Parse Prometheus' text exposition format 0.0.4. Lines are numbered from 1. A line that is not
 * a comment, a blank, `# HELP` or `# TYPE`, or a valid sample is reported in `errors` and skipped;
 * everything else is still returned.
 */
export function parsePrometheusText(text: string): ParseResult {
  const samples: ParsedSample[] = [];
  const errors: Array<{ line: number; reason: string }> = [];
  const types: Record<string, string> = {};
  const help: Record<string, string> = {};
  const seenFamilies = new Set<string>();
  let sampleLines = 0;
  const lines = text.split('\n');
  for (let idx = 0; idx < lines.length; idx++) {
    const lineNo = idx + 1;
    let line = lines[idx]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const trimmed = line.replace(/^[ \t]+/, '');
    if (trimmed.trim() === '') continue;
    if (trimmed.startsWith('#')) {
      const m = HELP_OR_TYPE.exec(trimmed);
      if (!m) continue; // an ordinary comment
      const kw = m[1]!;
      const rest = m[2] ?? '';
      const nm = METRIC_NAME.exec(rest);
      if (!nm || (rest.length > nm[0].length && !/[ \t]/.test(rest[nm[0].length]!))) {
        errors.push({ line: lineNo, reason: `# ${kw} without a valid metric name` });
        continue;
      }
      const name = nm[0];
      const arg = rest.slice(name.length).replace(/^[ \t]+/, '');
      if (kw === 'HELP') {
        if (help[name] !== undefined) {
          errors.push({ line: lineNo, reason: `second # HELP for '${name}'` });
          continue;
        }
        help[name] = unescapeHelp(arg);
      } else {
        const t = arg.trim();
        if (!METRIC_TYPES.has(t)) {
          errors.push({ line: lineNo, reason: `unknown metric type '${snippet(t, 30)}' for '${name}'` });
          continue;
        }
        if (types[name] !== undefined) {
          errors.push({ line: lineNo, reason: `second # TYPE for '${name}'` });
          continue;
        }
        if (seenFamilies.has(name)) {
          errors.push({ line: lineNo, reason: `# TYPE for '${name}' after its samples` });
          continue;
        }
        types[name] = t;
      }
      continue;
    }
    sampleLines++;
    const r = parseSampleLine(trimmed);
    if (typeof r === 'string') {
      errors.push({ line: lineNo, reason: r });
      continue;
    }
    const family = familyOf(r.metric, types);
    const t = types[family];
    if (t === 'histogram' && r.metric === `${family}_bucket`) {
      const le = r.labels.le;
      if (le === undefined || parsePromFloat(le) === undefined || Number.isNaN(parsePromFloat(le))) {
        errors.push({ line: lineNo, reason: `histogram bucket '${r.metric}' without a numeric 'le' label` });
        continue;
      }
    }
    if (t === 'summary' && r.metric === family) {
      const q = r.labels.quantile;
      if (q === undefined || parsePromFloat(q) === undefined) {
        errors.push({ line: lineNo, reason: `summary '${r.metric}' without a numeric 'quantile' label` });
        continue;
      }
    }
    seenFamilies.add(family);
    samples.push(r);
  }
  return { samples, errors, types, help, sampleLines };
}

// ---------------------------------------------------------------------------------------------
// histogram_quantile

/**
 * PromQL's `histogram_quantile(q, ...)` on one histogram's cumulative buckets (classic
 * histograms): buckets sorted by `le`, equal bounds merged, counts forced monotonic, linear
 * interpolation inside the bucket holding the rank (from 0 for the first bucket when its bound is
 * positive), the upper bound of the second-highest bucket when the rank is in the +Inf bucket.
 * NaN when there is no +Inf bucket, fewer than two buckets or no observations; -Inf/+Inf for
 * q < 0 / q > 1.
 */
export function histogramQuantile(q: number, buckets: Array<{ le: number; count: number }>): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  if (buckets.length === 0) return NaN;
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  if (sorted[sorted.length - 1]!.le !== Infinity) return NaN;
  // Merge buckets with the same upper bound (e.g. from several series summed).
  const bs: Array<{ le: number; count: number }> = [];
  for (const b of sorted) {
    const last = bs[bs.length - 1];
    if (last && last.le === b.le) last.count += b.count;
    else bs.push({ le: b.le, count: b.count });
  }
  // Counts must not decrease with le (scrape races, resets): carry the maximum forward.
  let max = -Infinity;
  for (const b of bs) {
    if (b.count > max) max = b.count;
    else b.count = max;
  }
  if (bs.length < 2) return NaN;
  const observations = bs[bs.length - 1]!.count;
  if (!(observations > 0)) return NaN;
  let rank = q * observations;
  // First bucket among all but +Inf whose cumulative count reaches the rank (sort.Search).
  let b = bs.length - 1;
  for (let i = 0; i < bs.length - 1; i++) {
    if (bs[i]!.count >= rank) {
      b = i;
      break;
    }
  }
  if (b === bs.length - 1) return bs[bs.length - 2]!.le;
  if (b === 0 && bs[0]!.le <= 0) return bs[0]!.le;
  let start = 0;
  const end = bs[b]!.le;
  let count = bs[b]!.count;
  if (b > 0) {
    start = bs[b - 1]!.le;
    count -= bs[b - 1]!.count;
    rank -= bs[b - 1]!.count;
  }
  return start + (end - start) * (rank / count);
}

/**
 * Buckets of one histogram from scraped samples (`<name>_bucket` with `le`), optionally only
 * those whose labels match `match`; counts of series with the same `le` are summed (like
 * `sum by (le)`).
 */
export function bucketsOf(
  samples: Array<{ metric: string; labels: Record<string, string>; value: number }>,
  histogram: string,
  match: Record<string, string> = {},
): Array<{ le: number; count: number }> {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (s.metric !== `${histogram}_bucket`) continue;
    if (!Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
    const le = parsePromFloat(s.labels.le ?? '');
    if (le === undefined || Number.isNaN(le)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
}

/**
 * Bucket increases between two scrapes of the same histogram (later minus earlier). A bucket
 * whose count went down (counter reset: the exporter restarted) counts from zero, as rate() does.
 */
export function bucketDeltas(
  earlier: Array<{ le: number; count: number }>,
  later: Array<{ le: number; count: number }>,
): Array<{ le: number; count: number }> {
  const prev = new Map(earlier.map((b) => [b.le, b.count]));
  const reset = later.some((b) => b.count < (prev.get(b.le) ?? 0));
  return later.map((b) => ({ le: b.le, count: reset ? b.count : b.count - (prev.get(b.le) ?? 0) }));
}
