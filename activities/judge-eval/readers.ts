/**
 * The readers of HaluEval and the offensive-language tweets (data/, see data/README.md): they
 * return examples { prompt, response, context?, positive } plus the count of malformed records
 * they skipped, so a judge can be run on them without knowing the source.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseCsv, readJsonl, type Loaded } from './file-formats.js';

export interface Example {
  /** Stable id within its data set (used for the split). */
  id: string;
  prompt: string;
  response: string;
  context?: string;
  positive: boolean;
  /** Sub-group for breakdowns (HateCheck functionality, sanity-set kind, ...). */
  group?: string;
}

// ---------------------------------------------------------------------------------------------
// HaluEval
// ---------------------------------------------------------------------------------------------

/** A record of halueval/general.jsonl: hallucination, positive = "yes"; no context. */
export function generalOf(o: Record<string, unknown>, line: number): Example | undefined {
  const { user_query: q, chatgpt_response: r, hallucination: h, ID: id } = o;
  if (typeof q !== 'string' || typeof r !== 'string' || (h !== 'yes' && h !== 'no')) return undefined;
  return { id: String(id ?? line), prompt: q, response: r, positive: h === 'yes' };
}

/** halueval/general.jsonl: hallucination, positive = "yes"; no context. */
export function loadGeneral(dir: string, limit = Infinity): Loaded<Example> {
  return readJsonl(path.join(dir, 'halueval', 'general.jsonl'), limit, generalOf);
}

export interface QaRow {
  id: string;
  knowledge: string;
  question: string;
  right: string;
  hallucinated: string;
}

export function qaRowOf(o: Record<string, unknown>, line: number): QaRow | undefined {
  const { knowledge: k, question: q, right_answer: ra, hallucinated_answer: ha } = o;
  if (typeof k !== 'string' || typeof q !== 'string' || typeof ra !== 'string' || typeof ha !== 'string') return undefined;
  return { id: String(line), knowledge: k, question: q, right: ra, hallucinated: ha };
}

export function loadQaRows(dir: string, limit = Infinity): Loaded<QaRow> {
  return readJsonl(path.join(dir, 'halueval', 'qa_one-turn.jsonl'), limit, qaRowOf);
}

/** halueval/qa_one-turn.jsonl: each line gives a right (negative) and a hallucinated (positive) answer. */
export function loadQa(dir: string, limit = Infinity): Loaded<Example> {
  const rows = loadQaRows(dir, limit);
  return {
    ...rows,
    rows: rows.rows.flatMap((r) => [
      { id: `${r.id}:right`, prompt: r.question, context: r.knowledge, response: r.right, positive: false },
      { id: `${r.id}:hallucinated`, prompt: r.question, context: r.knowledge, response: r.hallucinated, positive: true },
    ]),
  };
}

// ---------------------------------------------------------------------------------------------
// The offensive-language tweets
// ---------------------------------------------------------------------------------------------

/** davidson-offensive/labeled_data.csv: positive = class 0 (hate) or 1 (offensive). */
export function loadDavidson(dir: string, limit = Infinity): Loaded<Example> {
  return parseDavidson(readFileSync(path.join(dir, 'davidson-offensive', 'labeled_data.csv'), 'utf8'), limit);
}

/** The text of labeled_data.csv (Davidson et al.): positive = class 0 (hate) or 1 (offensive). */
export function parseDavidson(text: string, limit = Infinity): Loaded<Example> {
  const records = parseCsv(text);
  const header = records.shift()?.fields ?? [];
  const iClass = header.indexOf('class');
  const iTweet = header.indexOf('tweet');
  if (iClass < 0 || iTweet < 0) throw new Error(`labeled_data.csv: header lacks 'class' or 'tweet': ${header.join(',')}`);
  const out: Loaded<Example> = { rows: [], malformed: 0, malformedExamples: [] };
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
    out.rows.push({
      id: r.fields[0] ?? String(r.line),
      prompt: 'Tweet',
      response: tweet,
      positive: cls !== '2',
      group: cls === '0' ? 'hate' : cls === '1' ? 'offensive' : 'neither',
    });
  }
  return out;
}
