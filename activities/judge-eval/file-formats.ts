/**
 * The file formats of the data sets: JSONL (one object per line, malformed lines counted) and
 * RFC 4180 CSV (quoted fields with commas and line breaks, broken quoting reported per record).
 */
import { readFileSync } from 'node:fs';

export interface Loaded<T> {
  rows: T[];
  malformed: number;
  malformedExamples: string[];
}

/** JSONL text: one object per line, `pick` turns it into a row or undefined (malformed). */
export function parseJsonl<T>(text: string, limit: number, pick: (o: Record<string, unknown>, line: number) => T | undefined): Loaded<T> {
  const out: Loaded<T> = { rows: [], malformed: 0, malformedExamples: [] };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length && out.rows.length < limit; i++) {
    const line = lines[i] as string;
    if (!line.trim()) continue;
    let row: T | undefined;
    try {
      const o: unknown = JSON.parse(line);
      row = o && typeof o === 'object' && !Array.isArray(o) ? pick(o as Record<string, unknown>, i + 1) : undefined;
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

export function readJsonl<T>(file: string, limit: number, pick: (o: Record<string, unknown>, line: number) => T | undefined): Loaded<T> {
  return parseJsonl(readFileSync(file, 'utf8'), limit, pick);
}

/**
 * RFC 4180 CSV: fields separated by commas, records by CRLF or LF, fields optionally quoted
 * with '"', a quote inside a quoted field doubled. Quoted fields may contain commas and line
 * breaks. Returns records with the 1-based line on which each starts; a record whose quoting is
 * broken (text after a closing quote, or a quote never closed) is returned with `error` set.
 */
export function parseCsv(text: string): { fields: string[]; line: number; error?: string }[] {
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
