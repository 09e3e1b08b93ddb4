/**
 * Connections for one command: a Temporal client or the stores, closed when the command is done.
 */
import type { Config } from '../../common/config.js';
import { openStores, runtimeConfig, temporalClient, type Stores } from '../runtime.js';

export type TemporalClient = Awaited<ReturnType<typeof temporalClient>>;

export async function withClient<T>(fn: (c: TemporalClient, config: Config) => Promise<T>): Promise<T> {
  const config = runtimeConfig();
  const client = await temporalClient(config);
  try {
    return await fn(client, config);
  } finally {
    await client.connection.close();
  }
}

export async function withStores<T>(fn: (stores: Stores, config: Config) => Promise<T>, config: Config = runtimeConfig()): Promise<T> {
  const stores = await openStores(config);
  try {
    return await fn(stores, config);
  } finally {
    await stores.close();
  }
}
