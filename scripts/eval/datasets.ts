/**
 * Readers for the labelled data sets in data/ (see data/README.md) and the deterministic
 * train / tune / test split every script uses. Node only (reads files).
 *
 * The readers the benchmark command also uses (HaluEval, the offensive-language tweets, the
 * split, CSV and JSONL) live in activities/judge-eval/ (readers.ts, split.ts, file-formats.ts)
 * and are re-exported here; the sets only the scripts read (HateCheck, Jigsaw, Ethos, the sanity
 * set, VADER) are below.
 *
 * Every loader returns examples { prompt, response, context?, positive } plus the count of
 * malformed records it skipped, so a judge can be run on them without knowing the source.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseCsv, readJsonl, type Loaded } from '../../activities/judge-eval/file-formats.js';
import { loadGeneral, loadQaRows, type Example } from '../../activities/judge-eval/readers.js';
import type { Split } from '../../activities/judge-eval/split.js';

export { parseCsv, readJsonl, type Loaded } from '../../activities/judge-eval/file-formats.js';
export { loadDavidson, loadGeneral, loadQa, loadQaRows, type Example, type QaRow } from '../../activities/judge-eval/readers.js';
export { evalOnlySplitOf, fnv1a, splitOf, type Split } from '../../activities/judge-eval/split.js';

// ---------------------------------------------------------------------------------------------
// Toxicity sets
// ---------------------------------------------------------------------------------------------

/**
 * HateCheck functionalities that are toxic although HateCheck calls them non-hateful: abuse of
 * individuals and of non-protected groups, and profanity. Everything else keeps HateCheck's label.
 */
export const HATECHECK_TOXIC_NON_HATEFUL = new Set(['target_indiv_nh', 'target_group_nh', 'profanity_nh']);

function expandTemplate(template: string, placeholders: Map<string, string[]>): string[] {
  const m = /\[([A-Z_a-z]+)\]/.exec(template);
  if (!m) return [template];
  const values = placeholders.get(m[0]);
  if (!values) throw new Error(`hatecheck: unknown placeholder ${m[0]}`);
  return values.map((v) => {
    let before = template.slice(0, m.index);
    const after = template.slice(m.index + m[0].length);
    // "a [IDENTITY_S]" -> "an immigrant"
    if (/\ba $/.test(before) && /^[aeiou]/i.test(v)) before = `${before.slice(0, -2)}an `;
    const value = m.index === 0 ? v.charAt(0).toUpperCase() + v.slice(1) : v;
    return before + value + after;
  });
}

/**
 * hatecheck/test_suite_templates.tsv expanded with hatecheck/template_placeholders.csv. Labels are
 * for toxicity (see HATECHECK_TOXIC_NON_HATEFUL); `group` is the HateCheck functionality; `id` is
 * the template's line, so every expansion of a template falls in the same split.
 */
export function loadHateCheck(dir: string): Loaded<Example> {
  const phText = readFileSync(path.join(dir, 'hatecheck', 'template_placeholders.csv'), 'utf8');
  const placeholders = new Map<string, string[]>();
  for (const r of parseCsv(phText).slice(1)) {
    const [name, values] = r.fields;
    if (name && values)
      placeholders.set(
        name,
        values.split(',').map((v) => v.trim()),
      );
  }
  const out: Loaded<Example> = { rows: [], malformed: 0, malformedExamples: [] };
  const lines = readFileSync(path.join(dir, 'hatecheck', 'test_suite_templates.tsv'), 'utf8').split(/\r?\n/);
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.trim()) continue;
    const [functionality, label, template] = line.split('\t');
    if (!functionality || (label !== 'hateful' && label !== 'non-hateful') || !template) {
      out.malformed++;
      if (out.malformedExamples.length < 3) out.malformedExamples.push(`line ${i + 1}`);
      continue;
    }
    const positive = label === 'hateful' || HATECHECK_TOXIC_NON_HATEFUL.has(functionality);
    for (const text of expandTemplate(template, placeholders)) {
      out.rows.push({ id: `${i + 1}`, prompt: 'Post', response: text, positive, group: functionality });
    }
  }
  return out;
}

/**
 * jigsaw/jigsaw_toxic_sample.csv and jigsaw/jigsaw_clean_sample.csv: Wikipedia talk-page comments
 * from the Jigsaw toxic comment data (lower-cased, punctuation stripped), positive = `toxic`.
 * `group` names the first sub-label that applies (threat, insult, identity_hate, obscene), else
 * "toxic" or "clean". `id` is Jigsaw's comment id.
 */
export function loadJigsaw(dir: string): Loaded<Example> {
  const out: Loaded<Example> = { rows: [], malformed: 0, malformedExamples: [] };
  const seen = new Set<string>();
  for (const file of ['jigsaw_toxic_sample.csv', 'jigsaw_clean_sample.csv']) {
    const lines = readFileSync(path.join(dir, 'jigsaw', file), 'utf8').split(/\r?\n/);
    const header = (lines[0] ?? '').split(',');
    const labels = header.slice(2);
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      if (!line.trim()) continue;
      const fields = line.split(',');
      const id = fields[0] ?? '';
      const flags = fields.slice(-labels.length);
      const text = fields
        .slice(1, fields.length - labels.length)
        .join(',')
        .trim();
      if (fields.length < labels.length + 2 || !id || !text || !flags.every((f) => f === '0' || f === '1')) {
        out.malformed++;
        if (out.malformedExamples.length < 3) out.malformedExamples.push(`${file} line ${i + 1}`);
        continue;
      }
      if (seen.has(id)) continue;
      seen.add(id);
      const on = (name: string) => flags[labels.indexOf(name)] === '1';
      const positive = on('toxic');
      const group = positive ? (['threat', 'insult', 'identity_hate', 'obscene'].find(on) ?? 'toxic') : 'clean';
      out.rows.push({ id, prompt: 'Comment', response: text, positive, group });
    }
  }
  return out;
}

/**
 * ethos/Ethos_Dataset_Binary.sample.csv: YouTube and Reddit comments labelled for hate speech
 * (`isHate`, the share of annotators who called it hate speech); positive = isHate >= 0.5, the
 * data set's own binary reading. Never trained or tuned on: the held-out source.
 */
export function loadEthos(dir: string): Loaded<Example> {
  const out: Loaded<Example> = { rows: [], malformed: 0, malformedExamples: [] };
  const text = readFileSync(path.join(dir, 'ethos', 'Ethos_Dataset_Binary.sample.csv'), 'utf8');
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.trim()) continue;
    const cut = line.lastIndexOf(';');
    const score = Number(line.slice(cut + 1));
    let comment = cut > 0 ? line.slice(0, cut) : '';
    if (comment.startsWith('"') && comment.endsWith('"')) comment = comment.slice(1, -1).replace(/""/g, '"');
    if (cut <= 0 || !Number.isFinite(score) || score < 0 || score > 1 || !comment.trim()) {
      out.malformed++;
      if (out.malformedExamples.length < 3) out.malformedExamples.push(`line ${i + 1}`);
      continue;
    }
    if (seen.has(comment)) continue;
    seen.add(comment);
    out.rows.push({
      id: String(i + 1),
      prompt: 'Comment',
      response: comment,
      positive: score >= 0.5,
      group: score >= 0.5 ? 'hate' : score > 0 ? 'some annotators: hate' : 'not hate',
    });
  }
  return out;
}

/** The files of tweeteval-offensive/, and the split each one is: OLID's own train / validation / test. */
export const OLID_FILES = { train: 'train', val: 'tune', test: 'test' } as const satisfies Record<string, Split>;
export type OlidFile = keyof typeof OLID_FILES;

/**
 * tweeteval-offensive/{train,val,test}_text.txt and _labels.txt: OLID tweets (OffensEval 2019) as
 * TweetEval ships them, one tweet per line and its label on the same line of the labels file
 * (1 = offensive: profanity, insults or threats, targeted or not). `id` is `file:line`, and
 * the split is the file's (OLID_FILES), not a hash.
 */
export function loadOlid(dir: string, file: OlidFile): Loaded<Example> {
  const read = (kind: string) => {
    const lines = readFileSync(path.join(dir, 'tweeteval-offensive', `${file}_${kind}.txt`), 'utf8').split(/\r?\n/);
    if (lines[lines.length - 1] === '') lines.pop();
    return lines;
  };
  const texts = read('text');
  const labels = read('labels');
  if (texts.length !== labels.length)
    throw new Error(
      `tweeteval-offensive/${file}: ${texts.length} tweets but ${labels.length} labels; the two files must have one line per tweet`,
    );
  const out: Loaded<Example> = { rows: [], malformed: 0, malformedExamples: [] };
  texts.forEach((raw, i) => {
    const text = raw.trim();
    const label = (labels[i] ?? '').trim();
    if (!text || (label !== '0' && label !== '1')) {
      out.malformed++;
      if (out.malformedExamples.length < 3) out.malformedExamples.push(`${file} line ${i + 1}`);
      return;
    }
    const positive = label === '1';
    out.rows.push({ id: `${file}:${i + 1}`, prompt: 'Tweet', response: text, positive, group: positive ? 'offensive' : 'not offensive' });
  });
  return out;
}

/** The split of an OLID example: that of the file it came from. */
export function olidSplitOf(id: string): Split {
  return OLID_FILES[id.slice(0, id.indexOf(':')) as OlidFile];
}

/** sanity/toxicity-sanity.jsonl: the hand-written sanity set (never trained or tuned on). */
export function loadSanity(dir: string): Loaded<Example> {
  return readJsonl(path.join(dir, 'sanity', 'toxicity-sanity.jsonl'), Infinity, (o, line) => {
    const { text, toxic, kind } = o;
    if (typeof text !== 'string' || typeof toxic !== 'boolean') return undefined;
    return { id: String(line), prompt: 'Message', response: text, positive: toxic, group: typeof kind === 'string' ? kind : 'other' };
  });
}

/**
 * Clean texts written by an assistant or its users (HaluEval general queries and responses, QA
 * questions and answers): negatives for toxicity. Nothing in HaluEval is labelled for toxicity;
 * these texts are taken as non-toxic, which a reading of samples supports.
 */
export function loadHaluEvalClean(dir: string): Loaded<Example> {
  const gen = loadGeneral(dir);
  const qa = loadQaRows(dir);
  const rows: Example[] = [];
  for (const g of gen.rows) {
    rows.push({ id: `g${g.id}:q`, prompt: 'Message', response: g.prompt, positive: false, group: 'user query' });
    rows.push({ id: `g${g.id}:r`, prompt: 'Message', response: g.response, positive: false, group: 'assistant response' });
  }
  for (const r of qa.rows) {
    rows.push({ id: `qa${r.id}:q`, prompt: 'Message', response: r.question, positive: false, group: 'question' });
    rows.push({ id: `qa${r.id}:a`, prompt: 'Message', response: `${r.right}`, positive: false, group: 'answer' });
  }
  return { rows, malformed: gen.malformed + qa.malformed, malformedExamples: [...gen.malformedExamples, ...qa.malformedExamples] };
}

/** Reads the VADER negative-valence word list (data/vader/vader_negative.tsv). */
export function loadVaderNegative(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(path.join(dir, 'vader', 'vader_negative.tsv'), 'utf8')
    .split(/\r?\n/)
    .slice(1)) {
    const [w, v] = line.split('\t');
    if (w && v && Number.isFinite(Number(v))) out[w] = Number(v);
  }
  return out;
}
