/** TCP ports of the stack: defaults, overrides from the environment, addresses, and probing. */
import { readFileSync } from 'node:fs';
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

/**
 * The OS's ephemeral port range (Linux /proc/sys/net/ipv4/ip_local_port_range; 32768–60999 when
 * unreadable). Ports in it are handed to outgoing connections and to servers that bind port 0.
 */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi && lo <= hi) return [lo, hi];
  } catch {
    // not Linux: the Linux default
  }
  return [32768, 60999];
}

function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * Ports this process has handed out: one not yet bound by its server is free to the OS, so two
 * servers started side by side could otherwise be given the same one.
 */
const handedOut = new Set<number>();
function handOut(p: number): number {
  handedOut.add(p);
  return p;
}

/**
 * A TCP port on 127.0.0.1 that nothing listens on right now, for a server started a moment
 * later. It is drawn at random from below the ephemeral range, so that neither an outgoing
 * connection nor a server binding port 0 (temporal start-dev picks its internal ports that way)
 * can take it in between; the OS picks one when that range is exhausted.
 */
export async function freePort(): Promise<number> {
  const top = Math.min(ephemeralRange()[0], 65536) - 1;
  const bottom = Math.max(10_000, top - 12_000);
  for (let i = 0; i < 50 && top > bottom; i++) {
    const candidate = bottom + Math.floor(Math.random() * (top - bottom));
    if (handedOut.has(candidate)) continue;
    const p = await listenOnce(candidate);
    if (p !== undefined) return handOut(p);
  }
  const p = await listenOnce(0);
  if (p === undefined) throw new StackError('no free TCP port on 127.0.0.1');
  return handOut(p);
}

/**
 * Start a server on ports drawn with freePort (`start` draws each with `port()`). Another process
 * can bind one between the draw and the server's own bind; such a start ("… in use") is tried
 * again on newly drawn ports, up to `attempts` times in all. Any other failure is thrown at once.
 */
export async function onFreePorts<T>(start: (port: () => Promise<number>) => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(freePort);
    } catch (e) {
      if (attempt >= attempts || !/\bin use\b/i.test(e instanceof Error ? e.message : String(e))) throw e;
    }
  }
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
