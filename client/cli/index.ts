/**
 * The `optiinfra` command line: local stack, worker, deployments, collection, schedules, scores,
 * the deploy gate, infrastructure data and the analysis agents.
 * Exit codes: 0 success, 3 usage or infrastructure error (the gate adds 1 reject, 2 inconclusive).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { WorkflowFailedError } from '@temporalio/client';
import { ConfigError } from '../../common/config.js';
import { StackError } from '../../stack/errors.js';
import { repoRoot } from '../../stack/paths.js';
import { OFFLINE_JUDGE_VERSION } from '../../domain/judge/offline-judge.js';
import { COMBINED_PROMPT_VERSION, JUDGE_PROMPT_VERSION } from '../../domain/judge/prompts.js';
import { GateUsageError } from '../gate.js';
import { EXIT, UsageError, type CommandOutcome } from './args.js';
import { registerBackfillCommand } from './backfill.js';
import { registerCodecServerCommand } from './codec.js';
import { registerCollectCommand, registerCyclesCommand, registerScoresCommand } from './collect.js';
import { registerDeploymentCommands } from './deployments.js';
import { registerBaselineCommand, registerCompareCommand, registerGateCommands } from './gate.js';
import { registerInfraCommands } from './infra.js';
import { registerJudgeCommands } from './judge.js';
import { registerReportCommand } from './report.js';
import { registerReviewCommands } from './review.js';
import { registerScheduleCommands } from './schedules.js';
import { registerStackCommands } from './stack.js';
import { registerWorkerCommand } from './worker.js';
import { registerWorkersCommand } from './workers.js';

/**
 * `optiinfra --version`: the release, and the judge versions stored with every score (what a bug
 * report or a CI log needs to tell which scores a run produced).
 */
export function versionText(): string {
  const pkg = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version?: string };
  const prompts = [COMBINED_PROMPT_VERSION, ...Object.values(JUDGE_PROMPT_VERSION)].join(', ');
  return `optiinfra ${pkg.version ?? 'unknown'} (offline judge ${OFFLINE_JUDGE_VERSION}; LLM judge prompts ${prompts})`;
}

/** The program; commands whose outcome is not plain success (the gate) set `outcome.exitCode`. */
export function buildProgram(outcome: CommandOutcome = { exitCode: EXIT.ok }): Command {
  const program = new Command()
    .name('optiinfra')
    .description('Watches self-hosted LLM deployments: scores every interaction, keeps quality baselines, gates rollouts.')
    .version(versionText(), '-V, --version', 'print the release and the judge versions')
    .showHelpAfterError()
    .exitOverride()
    // The program's options are read before a command's name only: after it, `--version <v>` is
    // the model version of `scores`, `baseline` and `backfill` (read anywhere, it printed the release).
    .enablePositionalOptions();

  registerStackCommands(program);
  registerWorkerCommand(program, outcome);
  registerWorkersCommand(program);
  registerCodecServerCommand(program);
  registerDeploymentCommands(program);
  registerCollectCommand(program);
  registerBackfillCommand(program);
  registerScheduleCommands(program);
  registerScoresCommand(program);
  registerCyclesCommand(program);
  registerGateCommands(program, outcome);
  registerBaselineCommand(program);
  registerCompareCommand(program);
  registerInfraCommands(program);
  registerReviewCommands(program);
  registerReportCommand(program);
  registerJudgeCommands(program, outcome);
  // --verbose is read from the arguments wherever it stands; every command accepts it.
  const verbose = () => new Option('--verbose', 'print stack traces on errors').hideHelp();
  const commands = (c: Command): Command[] => [c, ...c.commands.flatMap(commands)];
  for (const c of commands(program)) c.addOption(verbose());
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  const outcome: CommandOutcome = { exitCode: EXIT.ok };
  const program = buildProgram(outcome);
  try {
    await program.parseAsync(argv);
    return outcome.exitCode;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
    if (err.code?.startsWith('commander.')) return EXIT.usage; // commander printed the message
    if (e instanceof WorkflowFailedError) {
      let c: unknown = e.cause;
      while (c && typeof c === 'object' && 'cause' in c && (c as { cause?: unknown }).cause) c = (c as { cause: unknown }).cause;
      console.error(`error: workflow failed: ${c instanceof Error ? c.message : e.message}`);
      return EXIT.usage;
    }
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof StackError || e instanceof GateUsageError) {
      console.error(`error: ${e.message}`);
      return EXIT.usage;
    }
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    if (process.argv.includes('--verbose') && e instanceof Error) console.error(e.stack);
    return EXIT.usage;
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().then((code) => process.exit(code));
}
