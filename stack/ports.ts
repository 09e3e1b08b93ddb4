/** TCP ports of the stack: defaults, overrides from the environment, addresses, and probing. */
import { connect as netConnect, createServer } from 'node:net';
import { StackError } from './errors.js';

/** Default ports of the local stack; each can be overridden by the env var next to it. */
export const DEFAULT_PORTS = {
  temporal: 7233, // OPTIINFRA_TEMPORAL_PORT
  temporalUi: 8233, // OPTIINFRA_TEMPORAL_UI_PORT
  clickhouseHttp: 18123, // OPTIINFRA_CLICKHOUSE_HTTP_PORT
  clickhouseTcp: 19000, // OPTIINFRA_CLICKHOUSE_TCP_PORT
  postgres: 15433, // OPTIINFRA_POSTGRES_PORT (the stack's own PostgreSQL server)
  pglite: 15432, // OPTIINFRA_PGLITE_PORT (the embedded fallback)
} as const;

/** A port from an env var, or the default; StackError when the value is not a port. */
export function portFromEnv(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = env[name]?.trim();
  if (!v) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new StackError(`${name} must be a TCP port 1..65535 (got '${v}')`);
  }
  return n;
}

/** host:port of a Temporal address like `127.0.0.1:7233` (no scheme). */
export function parseHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^\[?([A-Za-z0-9_.:-]+?)\]?:([0-9]{1,5})$/.exec(address.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}

/** true for an address of this machine (a local server the stack may start itself). */
export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '0.0.0.0';
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** true when something accepts TCP connections on host:port. */
export function portInUse(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((res) => {
    const sock = netConnect({ port, host });
    const done = (v: boolean) => {
      sock.destroy();
      res(v);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}
