/** The CLI run in this process (`main`), with every server unreachable unless `env` says otherwise. */

/** Environment under which nothing can be reached: a command that connects fails, one that validates first does not get there. */
export const UNREACHABLE_ENV: Record<string, string> = {
  OPTIINFRA_HOME: '/nonexistent/optiinfra-home',
  CLICKHOUSE_URL: 'http://127.0.0.1:1',
  DATABASE_URL: 'postgres://cli:dbpass-5678@127.0.0.1:1/x',
  TEMPORAL_ADDRESS: '127.0.0.1:1',
  GITHUB_RUN_ID: '',
  CI_PIPELINE_ID: '',
  BUILD_ID: '',
};

/** Run `optiinfra <args>`: its exit code, everything it printed (stdout and stderr) and how long it took. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; ms: number }> {
  const { main } = await import('../../client/cli/index.js');
  const written: string[] = [];
  const [write, writeOut] = [process.stderr.write.bind(process.stderr), process.stdout.write.bind(process.stdout)];
  const capture = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  process.stderr.write = capture;
  process.stdout.write = capture;
  const [consoleError, consoleLog] = [console.error, console.log];
  console.error = (...a: unknown[]) => written.push(a.map(String).join(' '));
  console.log = console.error;
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries({ ...UNREACHABLE_ENV, ...env })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  const t0 = Date.now();
  try {
    const code = await main(['node', 'optiinfra', ...args]);
    return { code, out: written.join('\n'), ms: Date.now() - t0 };
  } finally {
    process.stderr.write = write;
    process.stdout.write = writeOut;
    console.error = consoleError;
    console.log = consoleLog;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
