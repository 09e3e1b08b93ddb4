#!/usr/bin/env node
// Runs the TypeScript CLI through tsx (no build step). Every path is resolved from this file,
// never from the working directory, so the command works from any folder, installed or not;
// tsx compiles with the package's own tsconfig.json, not one it might find in that folder.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';

// The compiler that loads the TypeScript needs the working directory: one that was deleted
// under the shell would end in a stack trace.
try {
  process.cwd();
} catch {
  console.error("error: the current directory no longer exists; 'cd' to an existing one and run optiinfra again");
  process.exit(3);
}

// `optiinfra worker` runs with its V8 old generation capped (OPTIINFRA_WORKER_HEAP_MB, default
// 256 MB; 0 keeps V8's sizing, which is 4 GiB on a 24 GiB machine and collected lazily: a worker
// whose live heap stays under 100 MB grew to 870 MB of RSS over a 50,000-interaction cycle). This
// process, before loading anything, starts the worker as its child with `--max-old-space-size`,
// forwards SIGINT/SIGTERM and exits with its code; the child stops at once when this process is
// gone (killed), through the IPC channel. A value the configuration refuses (not 0 or 64 and
// more) starts no child: the configuration reports it.
const cap = (process.env.OPTIINFRA_WORKER_HEAP_MB ?? '').trim() === '' ? 256 : Number(process.env.OPTIINFRA_WORKER_HEAP_MB);
const capped = () => getHeapStatistics().heap_size_limit / 2 ** 20 <= cap + 256;
if (process.argv[2] === 'worker' && !process.send && Number.isInteger(cap) && cap >= 64 && !capped()) {
  const child = spawn(process.execPath, [...process.execArgv, `--max-old-space-size=${cap}`, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.once('error', (e) => {
    console.error(
      `error: cannot start the worker with a capped heap (${e.message}); set OPTIINFRA_WORKER_HEAP_MB=0 to run it without the cap`,
    );
    process.exit(3);
  });
  child.once('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
} else {
  // The worker started by the branch above: stop as soon as the launcher is gone (a SIGKILL it
  // cannot forward), even if that happened while this process was still starting.
  if (process.send) {
    process.on('disconnect', () => process.exit(1));
    if (!process.connected) process.exit(1);
  }
  const { register } = await import('tsx/esm/api');
  const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url));
  register({ tsconfig: existsSync(tsconfig) ? tsconfig : false });
  const { main } = await import(new URL('../client/cli/index.ts', import.meta.url).href);
  process.exit(await main());
}
