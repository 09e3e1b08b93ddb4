/**
 * The labelled data sets of the judge benchmark (`optiinfra judge eval`): the built-in sets of
 * the data directory (HaluEval QA and general, the offensive-language tweets) and labelled JSONL
 * files in the format of docs/judge-eval-format.md, turned into benchmark items with one label
 * per check and the split of `npm run judge:eval`.
 *
 * The readers of the source files are in readers.ts, the file formats in file-formats.ts, the
 * split in split.ts.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { CHECKS, type Check, type JudgeInput } from '../../common/types.js';
import { truncateForJudge } from '../../domain/judge/truncate.js';
import { parseJsonl, type Loaded } from './file-formats.js';
import { generalOf, parseDavidson, qaRowOf } from './readers.js';
import { splitOf, type Split } from './split.js';

/** One judged input of the benchmark and what people said of it, per check. */
export interface EvalItem {
  /** The data set's name (`qa`, `general`, `offensive`, or a file's name). */
  set: string;
  /** Stable id within the data set. */
  id: string;
  /** What the judge sees: the texts after the product's text budget (truncateForJudge). */
  input: JudgeInput;
  /**
   * Per labelled check: true when the check should flag the item (hallucinated, toxic, or poor
   * quality), false when it should not. Checks without a label are not measured on the item.
   */
  labels: Partial<Record<Check, boolean>>;
  split: Split;
}

export interface EvalSet {
  name: string;
  /** The file read. */
  source: string;
  items: EvalItem[];
  /** The checks some item is labelled for. */
  checks: Check[];
  malformed: number;
  malformedExamples: string[];
}

/** The data sets under the data directory, by the name `--set` takes. */
export const BUILTIN_SETS = {
  qa: {
    file: path.join('halueval', 'qa_one-turn.jsonl'),
    checks: ['hallucination'],
    what: 'HaluEval QA: right and hallucinated answers with the knowledge passage',
  },
  general: {
    file: path.join('halueval', 'general.jsonl'),
    checks: ['hallucination'],
    what: 'HaluEval general: ChatGPT responses, human hallucination labels, no passage',
  },
  offensive: {
    file: path.join('davidson-offensive', 'labeled_data.csv'),
    checks: ['toxicity'],
    what: 'Davidson et al. tweets: hate speech or offensive (toxic) vs neither',
  },
} as const satisfies Record<string, { file: string; checks: readonly Check[]; what: string }>;
export type BuiltinSet = keyof typeof BUILTIN_SETS;
export const BUILTIN_SET_NAMES = Object.keys(BUILTIN_SETS) as BuiltinSet[];

export function isBuiltinSet(name: string): name is BuiltinSet {
  return Object.hasOwn(BUILTIN_SETS, name);
}

export interface LoadOptions {
  /** The data directory (for the built-in sets). */
  dataDir: string;
  /** At most this many items per set (after the split). */
  limit?: number;
  /** 'test': only the test split (20 %, by the same hash as `npm run judge:eval`); default all. */
  split?: 'all' | 'test';
}

/** A data file that is missing or unreadable: the message names the file and what to pass. */
export class EvalDataError extends Error {
  override name = 'EvalDataError';
}

const FORMAT_DOC = 'docs/judge-eval-format.md';

/** The 1-based line of the first bytes that are not UTF-8 (a line feed never occurs inside a UTF-8 sequence). */
function firstInvalidUtf8Line(buf: Buffer): number {
  const strict = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (let line = 1; ; line++) {
    const end = buf.indexOf(0x0a, start);
    try {
      strict.decode(buf.subarray(start, end < 0 ? buf.length : end));
    } catch {
      return line;
    }
    if (end < 0) return line;
    start = end + 1;
  }
}

/**
 * The text of a data file. Only regular files are read (a FIFO would wait for a writer forever).
 * `strict` (labelled files): a gzip-compressed file and bytes that are not UTF-8 are errors naming
 * the file and line, rather than garbage lines or replacement characters.
 */
function readText(file: string, what: string, hint: string, strict = false): string {
  const fail = (why: string): never => {
    throw new EvalDataError(`${what}: ${file} ${why}${hint ? ` (${hint})` : ''}`);
  };
  let buf: Buffer;
  try {
    const st = statSync(file);
    if (st.isDirectory()) return fail('is a directory');
    if (!st.isFile()) return fail('is not a regular file (a FIFO, device or socket)');
    buf = readFileSync(file);
  } catch (e) {
    if (e instanceof EvalDataError) throw e;
    const code = (e as { code?: string }).code;
    return fail(code === 'ENOENT' ? 'not found' : code === 'EISDIR' ? 'is a directory' : (e as Error).message);
  }
  if (strict && buf[0] === 0x1f && buf[1] === 0x8b) {
    throw new EvalDataError(
      `labelled file ${file} is gzip-compressed: decompress it first (gunzip -c ${file} > plain.jsonl); the format is in ${FORMAT_DOC}`,
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: strict }).decode(buf);
  } catch (e) {
    if (strict && e instanceof TypeError) {
      throw new EvalDataError(
        `labelled file ${file}: line ${firstInvalidUtf8Line(buf)} is not valid UTF-8; save the file as UTF-8 (${FORMAT_DOC})`,
      );
    }
    return fail((e as Error).message);
  }
}

const itemOf = (
  set: string,
  id: string,
  raw: { prompt: string; response: string; context?: string },
  labels: EvalItem['labels'],
  splitKey: string,
): EvalItem => ({
  set,
  id,
  input: truncateForJudge(raw).input,
  labels,
  split: splitOf(splitKey, id),
});

/**
 * Items of one data set: a built-in name (`qa`, `general`, `offensive`) read from the data
 * directory, or the path of a labelled JSONL file. Throws EvalDataError when the file cannot be
 * read or holds no valid record.
 */
export function loadEvalSet(spec: string, o: LoadOptions): EvalSet {
  const limit = o.limit ?? Number.POSITIVE_INFINITY;
  const keep = (items: EvalItem[]) => (o.split === 'test' ? items.filter((i) => i.split === 'test') : items).slice(0, limit);
  const hint = 'pass --data DIR or set OPTIINFRA_DATA_DIR to the directory holding the data sets';
  if (isBuiltinSet(spec)) {
    const def = BUILTIN_SETS[spec];
    const file = path.join(o.dataDir, def.file);
    const text = readText(file, `data set '${spec}'`, hint);
    let loaded: Loaded<EvalItem>;
    if (spec === 'qa') {
      const rows = parseJsonl(text, Number.POSITIVE_INFINITY, qaRowOf);
      // Both answers of a question share the question's split (as in `npm run judge:eval`).
      const items = rows.rows.flatMap((r) => {
        const split = splitOf('halueval-qa', r.id);
        return [
          {
            ...itemOf(
              'qa',
              `${r.id}:right`,
              { prompt: r.question, context: r.knowledge, response: r.right },
              { hallucination: false },
              'halueval-qa',
            ),
            split,
          },
          {
            ...itemOf(
              'qa',
              `${r.id}:hallucinated`,
              { prompt: r.question, context: r.knowledge, response: r.hallucinated },
              { hallucination: true },
              'halueval-qa',
            ),
            split,
          },
        ];
      });
      loaded = { ...rows, rows: items };
    } else if (spec === 'general') {
      const rows = parseJsonl(text, Number.POSITIVE_INFINITY, generalOf);
      loaded = { ...rows, rows: rows.rows.map((e) => itemOf('general', e.id, e, { hallucination: e.positive }, 'halueval-general')) };
    } else {
      const rows = parseDavidson(text, Number.POSITIVE_INFINITY);
      loaded = { ...rows, rows: rows.rows.map((e) => itemOf('offensive', e.id, e, { toxicity: e.positive }, 'davidson')) };
    }
    return {
      name: spec,
      source: file,
      items: keep(loaded.rows),
      checks: [...def.checks],
      malformed: loaded.malformed,
      malformedExamples: loaded.malformedExamples,
    };
  }
  if (!spec.toLowerCase().endsWith('.jsonl')) {
    throw new EvalDataError(
      `unknown data set '${spec}': use ${BUILTIN_SET_NAMES.join(', ')} or the path of a .jsonl file (docs/judge-eval-format.md)`,
    );
  }
  const file = path.resolve(spec);
  const name = path.basename(file);
  const parsed = parseLabelledJsonl(readText(file, `labelled file '${spec}'`, '', true), name);
  if (!parsed.rows.length) {
    const why = parsed.malformed
      ? `all ${parsed.malformed} records are malformed (${parsed.malformedExamples.join('; ')})`
      : 'it holds no record';
    throw new EvalDataError(`labelled file ${file}: ${why}; the format is in docs/judge-eval-format.md`);
  }
  const checks = CHECKS.filter((c) => parsed.rows.some((i) => i.labels[c] !== undefined));
  return { name, source: file, items: keep(parsed.rows), checks, malformed: parsed.malformed, malformedExamples: parsed.malformedExamples };
}

const LABEL_VALUES: Record<string, boolean> = { true: true, false: false, 1: true, 0: false };

/**
 * A labelled JSONL text (docs/judge-eval-format.md): one object per line with `prompt` and
 * `response` (strings), optional `context` (string or null) and `id` (string or number; default
 * the line number), and `labels`: at least one of quality, hallucination and toxicity, each
 * true (the check should flag it), false, 1 or 0. Other fields are ignored. A malformed line is
 * counted and named with its reason, never guessed at.
 */
export function parseLabelledJsonl(text: string, set: string, limit = Number.POSITIVE_INFINITY): Loaded<EvalItem> {
  const out: Loaded<EvalItem> = { rows: [], malformed: 0, malformedExamples: [] };
  const lines = text.split(/\r?\n/);
  const bad = (line: number, why: string) => {
    out.malformed++;
    if (out.malformedExamples.length < 3) out.malformedExamples.push(`line ${line}: ${why}`);
  };
  const idLines = new Map<string, number>();
  for (let i = 0; i < lines.length && out.rows.length < limit; i++) {
    const line = (lines[i] as string).trim();
    if (!line) continue;
    let o: unknown;
    try {
      o = JSON.parse(i === 0 ? line.replace(/^\uFEFF/, '') : line);
    } catch {
      bad(i + 1, 'not JSON');
      continue;
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) {
      bad(i + 1, 'not a JSON object');
      continue;
    }
    const r = o as Record<string, unknown>;
    if (typeof r.prompt !== 'string') {
      bad(i + 1, 'prompt must be a string');
      continue;
    }
    if (typeof r.response !== 'string' || !r.response.trim()) {
      bad(i + 1, 'response must be a non-empty string');
      continue;
    }
    if (r.context !== undefined && r.context !== null && typeof r.context !== 'string') {
      bad(i + 1, 'context must be a string or null');
      continue;
    }
    if (r.id !== undefined && !(typeof r.id === 'string' && r.id.trim()) && !(typeof r.id === 'number' && Number.isFinite(r.id))) {
      bad(i + 1, 'id must be a non-empty string or a number');
      continue;
    }
    const rawLabels = r.labels;
    if (!rawLabels || typeof rawLabels !== 'object' || Array.isArray(rawLabels)) {
      bad(i + 1, `labels must be an object with one or more of ${CHECKS.join(', ')}`);
      continue;
    }
    const labels: EvalItem['labels'] = {};
    let problem: string | undefined;
    for (const [k, v] of Object.entries(rawLabels as Record<string, unknown>)) {
      if (!(CHECKS as readonly string[]).includes(k)) {
        problem = `labels.${k.slice(0, 40)} is not a check (${CHECKS.join(', ')})`;
        break;
      }
      const value = typeof v === 'boolean' || typeof v === 'number' ? LABEL_VALUES[String(v)] : undefined;
      if (value === undefined) {
        problem = `labels.${k} must be true, false, 1 or 0`;
        break;
      }
      labels[k as Check] = value;
    }
    if (problem || !Object.keys(labels).length) {
      bad(i + 1, problem ?? `labels must name one or more of ${CHECKS.join(', ')}`);
      continue;
    }
    const id = r.id === undefined ? String(i + 1) : String(r.id);
    const first = idLines.get(id);
    if (first !== undefined) {
      bad(i + 1, `id '${id.slice(0, 80)}' is used again (first on line ${first}); ids must be unique`);
      continue;
    }
    idLines.set(id, i + 1);
    const context = typeof r.context === 'string' ? r.context : undefined;
    out.rows.push(itemOf(set, id, { prompt: r.prompt, response: r.response, ...(context !== undefined ? { context } : {}) }, labels, set));
  }
  return out;
}
