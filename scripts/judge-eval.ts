/**
 * Measures how well the offline judge agrees with human labels.
 *
 *   npx tsx scripts/judge-eval.ts [--data DIR] [--limit N]
 *
 * DIR defaults to $OPTIINFRA_DATA_DIR, else the repository's data/ folder.
 * --limit N uses at most the first N records of each data set (for a quick run).
 *
 * Data sets (see the data README):
 * - halueval/general.jsonl: hallucination; positive = label "yes"; prompt = user_query,
 *   response = chatgpt_response, no context.
 * - halueval/qa_one-turn.jsonl: hallucination; each line gives two examples, right_answer
 *   (negative) and hallucinated_answer (positive); prompt = question, context = knowledge.
 * - davidson-offensive/labeled_data.csv: toxicity; positive = class 0 (hate speech) or 1
 *   (offensive), negative = class 2 (neither).
 *
 * Prints a table and then, as the last line, one JSON object holding every figure.
 * Malformed records are skipped and counted (table column "skipped", JSON "skipped_malformed",
 * and a note on stderr with the first line numbers), never dropped silently.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { binaryReport, type BinaryReport } from '../domain/judge/eval-metrics.js';
import { OFFLINE_JUDGE_VERSION, offlineJudge } from '../domain/judge/offline-judge.js';
import { resolveDataDir } from '../stack/sim/collector-simulator.js';

interface Args {
  dataDir: string;
  limit: number;
}

function parseArgs(argv: string[]): Args {
  let dataDir = resolveDataDir().dir;
  let limit = Number.POSITIVE_INFINITY;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--data') dataDir = path.resolve(next());
    else if (a?.startsWith('--data=')) dataDir = path.resolve(a.slice('--data='.length));
    else if (a === '--limit' || a?.startsWith('--limit=')) {
      const v = a === '--limit' ? next() : a.slice('--limit='.length);
      limit = Number(v);
      if (!Number.isInteger(limit) || limit <= 0) throw new Error(`--limit must be a positive integer, got '${v}'`);
    } else if (a === '--help' || a === '-h') {
      console.log('usage: npx tsx scripts/judge-eval.ts [--data DIR] [--limit N]');
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (usage: [--data DIR] [--limit N])`);
  }
  return { dataDir, limit };
}

// ---------------------------------------------------------------------------------------------
// Readers
// ---------------------------------------------------------------------------------------------

interface Loaded<T> {
  rows: T[];
  malformed: number;
  malformedExamples: string[];
}

function readJsonl<T>(file: string, limit: number, pick: (o: Record<string, unknown>) => T | undefined): Loaded<T> {
  const text = readFileSync(file, 'utf8');
  const out: Loaded<T> = { rows: [], malformed: 0, malformedExamples: [] };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length && out.rows.length < limit; i++) {
    const line = lines[i] as string;
    if (!line.trim()) continue;
    let row: T | undefined;
    try {
      const o: unknown = JSON.parse(line);
      row = o && typeof o === 'object' && !Array.isArray(o) ? pick(o as Record<string, unknown>) : undefined;
    } catch {
      row = undefined;
    }
    if (row === undefined) {
      out.malformed++;
      if (out.malformedExamples.length < 3) out.malformedExamples.push(`line ${i + 1}`);
    } else out.rows.push(row);
  }
  return out;
}

/**
 * RFC 4180 CSV: fields separated by commas, records by CRLF or LF, fields optionally quoted
 * with '"', a quote inside a quoted field doubled. Quoted fields may contain commas and line
 * breaks. Returns records with the 1-based line on which each starts; a record whose quoting is
 * broken (text after a closing quote, or a quote never closed) is returned with `error` set.
 */
function parseCsv(text: string): { fields: string[]; line: number; error?: string }[] {
  const records: { fields: string[]; line: number; error?: string }[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  while (i < n) {
    const startLine = line;
    const fields: string[] = [];
    let error: string | undefined;
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        i++;
        let closed = false;
        while (i < n) {
          const ch = text[i] as string;
          if (ch === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (ch === '\n') line++;
          field += ch;
          i++;
        }
        if (!closed) error ??= 'unterminated quoted field';
        // Anything between the closing quote and the next separator is malformed.
        while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          error ??= 'text after a closing quote';
          field += text[i];
          i++;
        }
      } else {
        while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          if (text[i] === '"') error ??= 'quote inside an unquoted field';
          field += text[i];
          i++;
        }
      }
      fields.push(field);
      if (i < n && text[i] === ',') {
        i++;
        continue;
      }
      break;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') {
      i++;
      line++;
    }
    if (fields.length === 1 && fields[0] === '' && !error) continue; // blank line
    records.push(error ? { fields, line: startLine, error } : { fields, line: startLine });
  }
  return records;
}

interface Example {
  prompt: string;
  response: string;
  context?: string;
  positive: boolean;
}

function loadGeneral(dir: string, limit: number): Loaded<Example> {
  return readJsonl(path.join(dir, 'halueval', 'general.jsonl'), limit, (o) => {
    const { user_query: q, chatgpt_response: r, hallucination: h } = o;
    if (typeof q !== 'string' || typeof r !== 'string' || (h !== 'yes' && h !== 'no')) return undefined;
    return { prompt: q, response: r, positive: h === 'yes' };
  });
}

function loadQa(dir: string, limit: number): Loaded<Example> {
  const pairs = readJsonl(path.join(dir, 'halueval', 'qa_one-turn.jsonl'), limit, (o) => {
    const { knowledge: k, question: q, right_answer: ra, hallucinated_answer: ha } = o;
    if (typeof k !== 'string' || typeof q !== 'string' || typeof ra !== 'string' || typeof ha !== 'string') return undefined;
    return [
      { prompt: q, context: k, response: ra, positive: false },
      { prompt: q, context: k, response: ha, positive: true },
    ] as Example[];
  });
  return { ...pairs, rows: pairs.rows.flat() };
}

function loadDavidson(dir: string, limit: number): Loaded<Example> & { header: string[] } {
  const text = readFileSync(path.join(dir, 'davidson-offensive', 'labeled_data.csv'), 'utf8');
  const records = parseCsv(text);
  const header = records.shift()?.fields ?? [];
  const col = (name: string) => header.indexOf(name);
  const iClass = col('class');
  const iTweet = col('tweet');
  if (iClass < 0 || iTweet < 0) throw new Error(`labeled_data.csv: header lacks 'class' or 'tweet': ${header.join(',')}`);
  const out: Loaded<Example> & { header: string[] } = { rows: [], malformed: 0, malformedExamples: [], header };
  for (const r of records) {
    if (out.rows.length >= limit) break;
    const cls = r.fields[iClass];
    const tweet = r.fields[iTweet];
    const problem =
      r.error ??
      (r.fields.length !== header.length
        ? `${r.fields.length} fields, expected ${header.length}`
        : tweet === undefined || !['0', '1', '2'].includes(cls ?? '')
          ? `class '${cls ?? ''}' is not 0, 1 or 2`
          : undefined);
    if (problem || tweet === undefined) {
      out.malformed++;
      if (out.malformedExamples.length < 3) out.malformedExamples.push(`line ${r.line} (${problem})`);
      continue;
    }
    out.rows.push({ prompt: 'Tweet', response: tweet, positive: cls !== '2' });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

interface Row {
  dataset: string;
  check: 'hallucination' | 'toxicity';
  malformed: number;
  report: BinaryReport;
  seconds: number;
}

function evaluate(dataset: string, check: 'hallucination' | 'toxicity', data: Loaded<Example>): Row {
  const t0 = performance.now();
  const scores: number[] = [];
  const labels: boolean[] = [];
  for (const ex of data.rows) {
    const input = { prompt: ex.prompt, response: ex.response, ...(ex.context !== undefined ? { context: ex.context } : {}) };
    scores.push(check === 'toxicity' ? offlineJudge('toxicity', input).toxicity : offlineJudge('hallucination', input).score);
    labels.push(ex.positive);
  }
  const report = binaryReport(scores, labels, 0.5);
  return { dataset, check, malformed: data.malformed, report, seconds: (performance.now() - t0) / 1000 };
}

function f(x: number, digits = 3): string {
  return Number.isNaN(x) ? 'n/a' : x.toFixed(digits);
}

function round(x: number): number | null {
  return Number.isNaN(x) ? null : Math.round(x * 10000) / 10000;
}

function main(): void {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`judge-eval: ${(e as Error).message}`);
    process.exit(2);
  }
  const t0 = performance.now();
  const sets: [string, 'hallucination' | 'toxicity', () => Loaded<Example>][] = [
    ['halueval/general.jsonl', 'hallucination', () => loadGeneral(args.dataDir, args.limit)],
    ['halueval/qa_one-turn.jsonl', 'hallucination', () => loadQa(args.dataDir, args.limit)],
    ['davidson-offensive/labeled_data.csv', 'toxicity', () => loadDavidson(args.dataDir, args.limit)],
  ];
  const rows: Row[] = [];
  for (const [name, check, load] of sets) {
    let data: Loaded<Example>;
    try {
      data = load();
    } catch (e) {
      console.error(`judge-eval: cannot read ${name} under ${args.dataDir}: ${(e as Error).message}`);
      process.exit(1);
    }
    if (data.malformed > 0) {
      console.error(`${name}: skipped ${data.malformed} malformed records (e.g. ${data.malformedExamples.join(', ')})`);
    }
    rows.push(evaluate(name, check, data));
  }

  console.log(`Offline judge ${OFFLINE_JUDGE_VERSION} vs human labels (data: ${args.dataDir}${Number.isFinite(args.limit) ? `, limit ${args.limit}` : ''})`);
  console.log('Threshold 0.5 on the judge score; precision/recall/F1 of the positive class (hallucinated / toxic).');
  console.log('');
  const head = ['data set', 'check', 'n', 'pos', 'neg', 'skipped', 'AUROC', 'acc', 'prec', 'recall', 'F1', 'TP', 'FP', 'TN', 'FN'];
  const body = rows.map((r) => [
    r.dataset,
    r.check,
    String(r.report.n),
    String(r.report.positives),
    String(r.report.negatives),
    String(r.malformed),
    f(r.report.auroc),
    f(r.report.accuracy),
    f(r.report.precision),
    f(r.report.recall),
    f(r.report.f1),
    String(r.report.tp),
    String(r.report.fp),
    String(r.report.tn),
    String(r.report.fn),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const fmtRow = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  console.log(fmtRow(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(fmtRow(b));
  const seconds = (performance.now() - t0) / 1000;
  console.log('');
  console.log(`(${seconds.toFixed(1)} s)`);
  console.log(
    JSON.stringify({
      judge: OFFLINE_JUDGE_VERSION,
      threshold: 0.5,
      results: rows.map((r) => ({
        dataset: r.dataset,
        check: r.check,
        n: r.report.n,
        positives: r.report.positives,
        negatives: r.report.negatives,
        skipped_malformed: r.malformed,
        auroc: round(r.report.auroc),
        accuracy: round(r.report.accuracy),
        precision: round(r.report.precision),
        recall: round(r.report.recall),
        f1: round(r.report.f1),
        tp: r.report.tp,
        fp: r.report.fp,
        tn: r.report.tn,
        fn: r.report.fn,
      })),
      seconds: Math.round(seconds * 10) / 10,
    }),
  );
}

main();
