/**
 * A schema migration that could not be applied, or a schema this code must not use: the message
 * names the store, the migration (when one was running) and what to do.
 */
export class MigrationError extends Error {
  override name = 'MigrationError';
  constructor(
    readonly store: 'PostgreSQL' | 'ClickHouse',
    message: string,
    readonly version?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The message of an error (one line), for a MigrationError's text. */
export function reasonOf(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s+/g, ' ').trim().slice(0, 500) || (e instanceof Error ? e.name : 'unknown error');
}
