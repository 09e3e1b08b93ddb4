/**
 * Record parsing: one raw item validated into an `Interaction` or refused with a reason
 * (`parseRecord`), and the page a fetch builds from its items, where the first of duplicate ids
 * is kept and the others are reported (`PageBuilder`). The record format is described in
 * docs/record-format.md.
 */
import {
  MAX_METADATA_CHARS,
  MAX_METADATA_DEPTH,
  MAX_RECORD_CHARS,
  interactionSchema,
  nestsDeeperThan,
  timestampWindow,
  wellFormed,
  type Interaction,
} from '../../domain/collector/record.js';
import { formatZodError } from '../../common/types.js';
import { clip, errorText, type BadRecord } from './source-contract.js';

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function textLength(v: unknown): number {
  return typeof v === 'string' ? v.length : 0;
}

/** Validate one raw item. Pure; never throws. */
export function parseRecord(
  raw: unknown,
  deployment: string,
  position: string,
  window: { oldest: number; newest: number } = timestampWindow(Date.now()),
): { ok: true; record: Interaction } | { ok: false; bad: BadRecord } {
  const fail = (reason: string, id?: string) => {
    const bad: BadRecord = { position, reason };
    if (id !== undefined) bad.id = id;
    return { ok: false as const, bad };
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail(`not a JSON object (got ${describeType(raw)})`);
  }
  const obj = raw as Record<string, unknown>;
  const id = typeof obj.id === 'string' && obj.id.length > 0 ? clip(obj.id, 200) : undefined;
  const total = textLength(obj.prompt) + textLength(obj.response) + textLength(obj.context);
  if (total > MAX_RECORD_CHARS) {
    return fail(`oversized: ${total} chars > ${MAX_RECORD_CHARS} budget`, id);
  }
  if (nestsDeeperThan(obj.metadata, MAX_METADATA_DEPTH)) {
    return fail(`metadata nests deeper than ${MAX_METADATA_DEPTH} levels`, id);
  }
  const parsed = interactionSchema.safeParse(raw);
  if (!parsed.success) return fail(clip(formatZodError(parsed.error)), id);
  const r = parsed.data;
  if (r.deployment !== deployment) {
    return fail(`deployment '${r.deployment}' does not match expected '${deployment}'`, id);
  }
  const ts = Date.parse(r.timestamp);
  if (ts < window.oldest || ts > window.newest) {
    return fail(
      `timestamp ${r.timestamp} is outside the accepted window ${new Date(window.oldest).toISOString()} .. ${new Date(window.newest).toISOString()} ` +
        '(OPTIINFRA_MAX_RECORD_AGE_DAYS, OPTIINFRA_MAX_CLOCK_AHEAD_MINUTES)',
      id,
    );
  }
  let metadata: string;
  try {
    metadata = JSON.stringify(r.metadata ?? {});
  } catch (e) {
    return fail(`metadata cannot be serialised: ${errorText(e)}`, id);
  }
  if (metadata.length > MAX_METADATA_CHARS) return fail(`metadata of ${metadata.length} chars > ${MAX_METADATA_CHARS}`, id);
  // Stores refuse lone UTF-16 surrogates: texts keep everything else, with U+FFFD in their place.
  return {
    ok: true,
    record: {
      ...r,
      prompt: wellFormed(r.prompt),
      response: wellFormed(r.response),
      ...(r.context === undefined ? {} : { context: wellFormed(r.context) }),
      ...(r.metadata === undefined ? {} : { metadata: JSON.parse(wellFormed(metadata)) as Record<string, unknown> }),
    },
  };
}

/** Collects one page: validates items, keeps the first of duplicate ids and reports the rest. */
export class PageBuilder {
  readonly records: Interaction[] = [];
  readonly bad: BadRecord[] = [];
  private readonly firstSeen = new Map<string, string>();

  constructor(
    private readonly deployment: string,
    private readonly window: { oldest: number; newest: number },
  ) {}

  add(raw: unknown, position: string): void {
    const r = parseRecord(raw, this.deployment, position, this.window);
    if (!r.ok) {
      this.bad.push(r.bad);
      return;
    }
    const first = this.firstSeen.get(r.record.id);
    if (first !== undefined) {
      this.bad.push({ position, reason: `duplicate id (first seen at ${first})`, id: r.record.id });
      return;
    }
    this.firstSeen.set(r.record.id, position);
    this.records.push(r.record);
  }

  addBad(b: BadRecord): void {
    this.bad.push(b);
  }
}
