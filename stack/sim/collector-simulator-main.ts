/**
 * Run the demo deployment simulator as its own process:
 *
 *   npx tsx stack/sim/collector-simulator-main.ts --deployment D --model-version V \
 *     --degraded-share 0.3 --port P [--rate N] [--seed S] [--host H] [--data-dir DIR]
 *
 * Prints the interactions URL as the first line on stdout, then serves until SIGTERM / SIGINT.
 */
import { Command, InvalidArgumentError } from 'commander';
import { startSimulator } from './collector-simulator.js';

const number = (what: string, min: number, max: number, int: boolean) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`${what} must be ${int ? 'an integer' : 'a number'} between ${min} and ${max}`);
  }
  return n;
};

const program = new Command()
  .name('simulator')
  .description('Demo deployment simulator serving interactions over the HTTP source protocol')
  .requiredOption('--deployment <id>', 'deployment id')
  .requiredOption('--model-version <version>', 'current model version')
  .requiredOption('--degraded-share <share>', 'share of hallucinated answers, 0..1', number('--degraded-share', 0, 1, false))
  .option('--port <port>', 'port (0 = random)', number('--port', 0, 65535, true), 0)
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--rate <perMinute>', 'interactions generated per minute (0 = only on demand)', number('--rate', 0, 600_000, false), 0)
  .option('--seed <seed>', 'PRNG seed', number('--seed', -(2 ** 31), 2 ** 31 - 1, true), 1)
  .option('--data-dir <dir>', 'directory holding halueval/qa_one-turn.jsonl (default: env OPTIINFRA_DATA_DIR)');

program.parse();
const o = program.opts<{
  deployment: string;
  modelVersion: string;
  degradedShare: number;
  port: number;
  host: string;
  rate: number;
  seed: number;
  dataDir?: string;
}>();

try {
  const sim = await startSimulator({
    deployment: o.deployment,
    modelVersion: o.modelVersion,
    degradedShare: o.degradedShare,
    port: o.port,
    host: o.host,
    ratePerMinute: o.rate,
    seed: o.seed,
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
  });
  process.stdout.write(`${sim.url}\n`);
  const base = sim.url.replace(/\/interactions$/, '');
  process.stderr.write(
    `simulator for ${o.deployment} (model ${o.modelVersion}, degraded share ${o.degradedShare}, rate ${o.rate}/min); ` +
      `health: ${base}/health\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`simulator: ${signal}, closing\n`);
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (e) {
  process.stderr.write(`simulator: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
