/**
 * `optiinfra stack up | status | down`: the local Temporal dev server, ClickHouse and PostgreSQL.
 */
import type { Command } from 'commander';
import { stackDown, stackStatus, stackUp } from '../../stack/stack.js';
import { loadConfig } from '../../common/config.js';
import { openStores, runtimeConfig } from '../runtime.js';
import { table } from './format.js';

export function registerStackCommands(program: Command): void {
  const stack = program.command('stack').description('the local stack: Temporal dev server, ClickHouse, PostgreSQL (PGlite)');
  stack
    .command('up')
    .description('install what is missing and start what is not running (idempotent)')
    .action(async () => {
      loadConfig(); // a bad variable is refused before anything starts (and before any URL is printed)
      const ep = await stackUp();
      const stores = await openStores(runtimeConfig());
      await stores.close();
      console.log(`stack is up; Temporal UI: ${ep.temporalUiUrl}`);
    });
  stack
    .command('status')
    .description('show what runs')
    .action(async () => {
      loadConfig();
      console.log(table(await stackStatus()));
    });
  stack
    .command('down')
    .description('stop what `stack up` started (data is kept)')
    .action(async () => {
      await stackDown();
    });
}
