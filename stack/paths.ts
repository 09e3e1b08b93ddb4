/** Where the stack keeps its files: the repository, the stack home and its logs, pid files and tools. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A service the stack starts itself and tracks by pid file. */
export type Service = 'temporal' | 'clickhouse' | 'postgres' | 'pglite';

export function repoRoot(): string {
  // stack/paths.ts -> repository root
  return resolve(dirname(fileURLToPath(import.meta.url)), '..');
}

export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  const h = env.OPTIINFRA_HOME?.trim();
  return h ? resolve(h) : join(repoRoot(), '.stack');
}

/** Directories below the stack home. */
export function stackDirs(home: string) {
  return {
    logs: join(home, 'logs'),
    run: join(home, 'run'),
    tools: join(home, 'tools'),
    clickhouse: join(home, 'clickhouse'),
    postgres: join(home, 'postgres'),
  };
}

export function pidFile(home: string, svc: Service): string {
  return join(stackDirs(home).run, `${svc}.pid`);
}

export function logFile(home: string, svc: Service): string {
  return join(stackDirs(home).logs, `${svc}.log`);
}
