/**
 * How `optiinfra infra list | remove` show a stored source, without a database: the secrets of a
 * URL, a configuration that no longer parses, text that would steer a terminal, and what a removal
 * says stays behind. The commands against PostgreSQL are in test/integration/infra-cli.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { InfraSourceRow } from '../../activities/storage/postgres/agents.js';
import { formatInfraSources, listedInfraSource, removedLine } from '../../client/cli/infra.js';
import { printJson } from '../../client/cli/format.js';

const row = (id: string, config: unknown, lastCollectedTo?: string): InfraSourceRow => ({ id, config, lastCollectedTo });

describe('a stored source as listed', () => {
  it('shows a metrics URL without its user, password or secret-looking query values', () => {
    const s = listedInfraSource(
      row('gpu-1', {
        kind: 'prometheus',
        url: 'https://reader:pw-7781xq@prom.example:9090/?api_key=k-55ab91&job=dcgm',
        resourceId: 'i-0abc',
        instanceType: 'p4d.24xlarge',
      }),
    );
    expect(s).toEqual({
      id: 'gpu-1',
      kind: 'prometheus',
      url: 'https://prom.example:9090/?api_key=****&job=dcgm',
      resourceId: 'i-0abc',
      instanceType: 'p4d.24xlarge',
      lastCollectedTo: null,
    });
    expect(JSON.stringify(s)).not.toMatch(/reader|pw-7781xq|k-55ab91/);
  });

  it('shows a FOCUS directory by its path and when a source was last collected', () => {
    expect(listedInfraSource(row('billing', { kind: 'focus', path: '/data/focus' }))).toEqual({
      id: 'billing',
      kind: 'focus',
      path: '/data/focus',
      lastCollectedTo: null,
    });
    expect(listedInfraSource(row('h', { kind: 'scrape', url: 'http://h:9400/metrics' }, '2026-01-02T03:04:05.000Z')).lastCollectedTo).toBe(
      '2026-01-02T03:04:05.000Z',
    );
  });

  it('lists a configuration that no longer parses as kind unknown with the reason, never throwing', () => {
    const ftp = listedInfraSource(row('edited', { kind: 'scrape', url: 'ftp://ops:pw-99ffa1@h/metrics' }));
    expect(ftp).toMatchObject({ id: 'edited', kind: 'unknown', url: 'ftp://h/metrics' });
    expect(ftp.error).toMatch(/^its stored configuration is invalid \(url: metrics url must be an http:\/\/ or https:\/\/ URL\)$/);
    expect(JSON.stringify(ftp)).not.toContain('pw-99ffa1');
    // Not a URL at all: the query (where a token sits) is not shown.
    const bad = listedInfraSource(row('bad-url', { kind: 'prometheus', url: 'not a url?token=t-12ab34' }));
    expect(bad).toMatchObject({ kind: 'unknown', url: '(unparseable URL)' });
    for (const config of [null, 'junk', 42, [], { kind: 'ceph' }, { kind: 'focus' }]) {
      const s = listedInfraSource(row('x', config));
      expect(s.kind, JSON.stringify(config)).toBe('unknown');
      expect(s.error, JSON.stringify(config)).toMatch(/stored configuration is invalid \(.+\)/);
    }
  });
});

describe('the listing as printed', () => {
  it('is a table with one line per source whose configuration no longer parses, saying how to fix it', () => {
    const out = formatInfraSources([
      listedInfraSource(row('billing', { kind: 'focus', path: '/data/focus' })),
      listedInfraSource(row('edited', { kind: 'scrape', url: 'ftp://h/metrics' })),
      listedInfraSource(row('gpu-1', { kind: 'scrape', url: 'http://h:9400/metrics', resourceId: 'i-1' }, '2026-01-02T03:04:05.000Z')),
    ]);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^source\s+kind\s+reads\s+resource_id\s+instance_type\s+collected_to$/);
    expect(lines.find((l) => l.startsWith('billing'))).toMatch(/^billing\s+focus\s+\/data\/focus\s+-\s+-\s+-$/);
    expect(lines.find((l) => l.startsWith('edited '))).toMatch(/^edited\s+unknown\s+ftp:\/\/h\/metrics\s+-\s+-\s+-$/);
    expect(lines.find((l) => l.startsWith('gpu-1'))).toMatch(/^gpu-1\s+scrape\s+http:\/\/h:9400\/metrics\s+i-1\s+-\s+2026-01-02 03:04:05$/);
    expect(out).toContain('3 source(s)');
    expect(out).toContain(
      "edited: its stored configuration is invalid (url: metrics url must be an http:// or https:// URL): register it again with 'optiinfra infra add edited …' or remove it with 'optiinfra infra remove edited'",
    );
  });

  it('says how to add a source when none is registered', () => {
    expect(formatInfraSources([])).toMatch(/^no infrastructure source is registered: add one with 'optiinfra infra add/);
  });

  it('drops escapes, bidi and zero-width characters of stored text', () => {
    const id = 'evil\u001b[2J\u202etxt.exe\u200b';
    const out = formatInfraSources([
      listedInfraSource(row(id, { kind: 'focus', path: '/d/\u001b]0;owned\u0007x\u009b31m' })),
      listedInfraSource(row(id, { kind: '\u001b[31mred' })),
    ]);
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u200b-\u200f]/);
    expect(out).toContain('evil[2Jtxt.exe');
    expect(removedLine(id, 'focus')).not.toMatch(/[\u001b\u202e\u200b]/);
  });
});

describe('--json of stored text', () => {
  it('escapes what a terminal acts on and reads back as the same value', () => {
    const value = [{ id: 'a\u202eb\u009b31m\u200bc\u001b[0m', path: 'tab\there\nline' }];
    const printed: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => printed.push(a.map(String).join(' '));
    try {
      printJson(value);
    } finally {
      console.log = log;
    }
    const text = printed.join('\n');
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u200b-\u200f]/);
    expect(text).toContain('\\u202e');
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('what a removal says goes and stays', () => {
  it('names the collected data deleted or kept in ClickHouse, and who still reads it', () => {
    expect(removedLine('billing', 'focus')).toBe(
      'infrastructure source billing removed (focus); the cost rows it read are deleted from ClickHouse (a FOCUS export is read whole again when a source is added)',
    );
    expect(removedLine('gpu-1', 'scrape')).toMatch(
      /^infrastructure source gpu-1 removed \(scrape\); the metric samples it collected stay in ClickHouse/,
    );
    expect(removedLine('x', 'unknown')).toBe(
      'infrastructure source x removed (unknown); its cost rows, if any, are deleted from ClickHouse; metric samples stay',
    );
  });
});
