import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clickhouseConfigXml, clickhousePaths, clickhouseUsersXml, xmlEscape } from '../../stack/clickhouse.js';
import { StackError } from '../../stack/errors.js';
import { repoRoot } from '../../stack/paths.js';
import { freePort, onFreePorts, parseHostPort, portFromEnv } from '../../stack/ports.js';
import { livePid, parsePid } from '../../stack/processes.js';
import { readEndpoints } from '../../stack/stack.js';
import { SEARCH_ATTRIBUTES, startTemporal, temporalStartArgs } from '../../stack/temporal.js';

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'stack-unit-'));
  tmpDirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('clickhouse config rendering', () => {
  it('renders a <yandex> config with our ports, paths, and no interserver port', () => {
    const xml = clickhouseConfigXml({ home: '/x/.stack', httpPort: 28123, tcpPort: 29000 });
    expect(xml).toMatch(/^<\?xml version="1.0"\?>/);
    expect(xml).toContain('<yandex>');
    expect(xml.trim().endsWith('</yandex>')).toBe(true);
    expect(xml).toContain('<http_port>28123</http_port>');
    expect(xml).toContain('<tcp_port>29000</tcp_port>');
    expect(xml).toContain('<listen_host>127.0.0.1</listen_host>');
    expect(xml).toContain('<path>/x/.stack/clickhouse/data/</path>');
    expect(xml).toContain('<tmp_path>/x/.stack/clickhouse/tmp/</tmp_path>');
    expect(xml).toContain('<user_files_path>/x/.stack/clickhouse/user_files/</user_files_path>');
    expect(xml).toContain('<format_schema_path>/x/.stack/clickhouse/format_schemas/</format_schema_path>');
    expect(xml).toContain('<users_config>/x/.stack/clickhouse/users.xml</users_config>');
    expect(xml).toContain('<log>/x/.stack/logs/clickhouse-server.log</log>');
    expect(xml).toContain('<mark_cache_size>');
    expect(xml).not.toContain('interserver');
    expect(xml).not.toContain('0.0.0.0');
  });

  it('escapes paths for XML', () => {
    expect(xmlEscape(`a&b<c>"d"`)).toBe('a&amp;b&lt;c&gt;&quot;d&quot;');
    const xml = clickhouseConfigXml({ home: '/tmp/a&b', httpPort: 1, tcpPort: 2 });
    expect(xml).toContain('<path>/tmp/a&amp;b/clickhouse/data/</path>');
    expect(xml).not.toMatch(/&(?!amp;|lt;|gt;|quot;)/);
  });

  it('directories end with a slash (ClickHouse requires it)', () => {
    const p = clickhousePaths('/h');
    for (const d of [p.data, p.tmp, p.userFiles, p.formatSchemas]) expect(d.endsWith('/')).toBe(true);
  });

  it('users.xml: default user, empty password, localhost only, default profile and quota', () => {
    const xml = clickhouseUsersXml();
    expect(xml).toContain('<yandex>');
    expect(xml).toContain('<password></password>');
    expect(xml).toContain('<ip>127.0.0.1</ip>');
    expect(xml).toContain('<ip>::1</ip>');
    expect(xml).not.toContain('::/0');
    expect(xml).toMatch(/<profiles>\s*<default>/);
    expect(xml).toMatch(/<quotas>\s*<default>/);
  });
});

describe('temporal dev server arguments', () => {
  it('binds to 127.0.0.1, registers every search attribute, persists when asked', () => {
    const args = temporalStartArgs({ port: 27233, uiPort: 28233, dbFile: '/h/temporal.db' });
    expect(args.slice(0, 2)).toEqual(['server', 'start-dev']);
    const joined = args.join(' ');
    expect(joined).toContain('--ip 127.0.0.1');
    expect(joined).toContain('--port 27233');
    expect(joined).toContain('--ui-port 28233');
    expect(joined).toContain('--db-filename /h/temporal.db');
    expect(joined).toContain('--log-level warn');
    for (const [k, t] of Object.entries(SEARCH_ATTRIBUTES)) expect(args).toContain(`${k}=${t}`);
    expect(args.filter((a) => a === '--search-attribute')).toHaveLength(Object.keys(SEARCH_ATTRIBUTES).length);
  });

  it('in memory without dbFile; extra args and namespace appended', () => {
    const args = temporalStartArgs({ port: 1, uiPort: 2, namespace: 'opti', extraArgs: ['--headless'] });
    expect(args).not.toContain('--db-filename');
    expect(args.join(' ')).toContain('--namespace opti');
    expect(args[args.length - 1]).toBe('--headless');
    expect(temporalStartArgs({ port: 1, uiPort: 2, namespace: 'default' })).not.toContain('--namespace');
  });
});

describe('temporal dev server start-up', () => {
  /** A stand-in `temporal` CLI that counts its starts and exits at once with `message` on stderr. */
  async function failingStart(message: string): Promise<{ starts: number; error: unknown }> {
    const home = tmp();
    const count = join(home, 'starts');
    const cli = join(home, 'temporal');
    writeFileSync(cli, `#!/bin/sh\necho start >> '${count}'\necho '${message}' >&2\nexit 1\n`, { mode: 0o755 });
    const saved = process.env.TEMPORAL_CLI;
    process.env.TEMPORAL_CLI = cli;
    try {
      const error = await startTemporal({ home, port: await freePort(), uiPort: await freePort() }).then(
        () => undefined,
        (e: unknown) => e,
      );
      return { starts: readFileSync(count, 'utf8').trim().split('\n').length, error };
    } finally {
      if (saved === undefined) delete process.env.TEMPORAL_CLI;
      else process.env.TEMPORAL_CLI = saved;
    }
  }

  it('a port taken between start-dev picking it and binding it: started again, three times in all', async () => {
    const r = await failingStart('listen tcp 127.0.0.1:39341: bind: address already in use');
    expect(r.starts).toBe(3);
    expect(r.error).toBeInstanceOf(StackError);
    expect(String(r.error)).toMatch(/exited during start-up[\s\S]*address already in use/);
  });

  it('any other start-up failure is reported at once, not retried', async () => {
    const r = await failingStart('unknown flag: --bogus');
    expect(r.starts).toBe(1);
    expect(String(r.error)).toContain('unknown flag: --bogus');
  });
});

describe('small parsers', () => {
  it('parsePid', () => {
    expect(parsePid('123\n')).toBe(123);
    expect(parsePid('')).toBeUndefined();
    expect(parsePid('0')).toBeUndefined();
    expect(parsePid('-5')).toBeUndefined();
    expect(parsePid('12abc')).toBeUndefined();
  });

  it('portFromEnv: default, valid, invalid', () => {
    expect(portFromEnv({}, 'P', 7233)).toBe(7233);
    expect(portFromEnv({ P: ' 27233 ' }, 'P', 7233)).toBe(27233);
    expect(() => portFromEnv({ P: 'abc' }, 'P', 7233)).toThrow(StackError);
    expect(() => portFromEnv({ P: '70000' }, 'P', 7233)).toThrow(/P must be a TCP port/);
  });

  it('freePort: a listenable port below the ephemeral range, so no outgoing connection takes it first', async () => {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const p of ports) expect(p).toBeLessThan(lo);
    const p = ports[0]!;
    const server = createServer();
    await new Promise<void>((res, rej) => server.once('error', rej).listen(p, '127.0.0.1', res));
    await new Promise((res) => server.close(res));
  });

  it('freePort never hands the same port out twice in one process, though each is free again once probed', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 400; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
  });

  it('onFreePorts: a port taken before the server binds it is drawn again; other failures are not retried', async () => {
    const drawn: number[][] = [];
    const started = await onFreePorts(async (port) => {
      const mine = [await port(), await port()];
      drawn.push(mine);
      if (drawn.length < 3) throw new StackError(`Temporal UI port ${mine[1]} is already in use; free it`);
      return mine;
    });
    expect(drawn).toHaveLength(3);
    expect(started).toEqual(drawn[2]);
    expect(new Set(drawn.flat()).size).toBe(6);

    let calls = 0;
    const always = onFreePorts(async (port) => {
      calls++;
      throw new StackError(`port ${await port()} is already in use`);
    });
    await expect(always).rejects.toThrow(/already in use/);
    expect(calls).toBe(3);

    calls = 0;
    const other = onFreePorts(async () => {
      calls++;
      throw new StackError('clickhouse-server: no such file');
    });
    await expect(other).rejects.toThrow(/no such file/);
    expect(calls).toBe(1);
  });

  it('parseHostPort', () => {
    expect(parseHostPort('127.0.0.1:7233')).toEqual({ host: '127.0.0.1', port: 7233 });
    expect(parseHostPort('temporal.example.com:7233')).toEqual({ host: 'temporal.example.com', port: 7233 });
    expect(parseHostPort('[::1]:7233')).toEqual({ host: '::1', port: 7233 });
    expect(parseHostPort('http://x:1')).toBeUndefined();
    expect(parseHostPort('x')).toBeUndefined();
    expect(parseHostPort('x:99999')).toBeUndefined();
  });
});

describe('pid files and endpoints file', () => {
  it('a pid file of a process that is gone is removed', () => {
    const home = tmp();
    mkdirSync(join(home, 'run'), { recursive: true });
    const f = join(home, 'run', 'clickhouse.pid');
    writeFileSync(f, '999999999\n');
    expect(livePid(home, 'clickhouse')).toBeUndefined();
    expect(existsSync(f)).toBe(false);
  });

  it('a pid file naming a live process that is not the service is removed', () => {
    const home = tmp();
    mkdirSync(join(home, 'run'), { recursive: true });
    const f = join(home, 'run', 'pglite.pid');
    writeFileSync(f, `${process.pid}\n`); // the test runner: alive, but not pglite-server
    expect(livePid(home, 'pglite')).toBeUndefined();
    expect(existsSync(f)).toBe(false);
  });

  it('readEndpoints: missing, valid, invalid', () => {
    const home = tmp();
    expect(readEndpoints(home)).toBeUndefined();
    const ep = {
      temporalAddress: '127.0.0.1:7233',
      temporalUiUrl: 'http://127.0.0.1:8233',
      clickhouseUrl: 'http://127.0.0.1:18123',
      databaseUrl: 'postgres://postgres@127.0.0.1:15432/postgres',
      databaseKind: 'pglite',
    };
    writeFileSync(join(home, 'endpoints.json'), JSON.stringify(ep));
    expect(readEndpoints(home)).toEqual(ep);
    writeFileSync(join(home, 'endpoints.json'), JSON.stringify({ ...ep, databaseKind: 'mysql' }));
    expect(readEndpoints(home)).toBeUndefined();
    writeFileSync(join(home, 'endpoints.json'), '{not json');
    expect(readEndpoints(home)).toBeUndefined();
  });

  it('repoRoot is the directory holding package.json', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { name: string };
    expect(pkg.name).toBe('optiinfra');
  });
});
