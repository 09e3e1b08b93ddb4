/** What every activity factory receives: configuration, the two stores and the LLM client. */
import type { Config } from '../common/config.js';
import type { LlmClient } from './llm/client.js';
import type { ClickHouseStore } from './storage/clickhouse/store.js';
import type { Db } from './storage/postgres/db.js';

export interface ActivityDeps {
  config: Config;
  ch: ClickHouseStore;
  db: Db;
  /** Absent when the offline judge is used (no key, or LLM_ENABLED=false). */
  llm?: LlmClient;
  /** Fault injection for tests: runs right after a rollback is delivered and recorded. */
  faults?: { afterRollbackDelivered?: (key: string) => void };
}
