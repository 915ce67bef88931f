#!/usr/bin/env node
// `sheepfold`: one binary for every Sheepfold process — sheep, target, dog, up, drill.
// Each subcommand lives in its own module and registers itself on the program. Only the module of the
// subcommand being run is loaded, so a sheep never loads (or depends on) the target's code and vice versa;
// `sheepfold --help` loads them all.
import { Command } from 'commander';

type Register = (program: Command) => void;

/** Subcommand name → loader of its registration function. */
const SUBCOMMANDS: Record<string, () => Promise<Register>> = {
  sheep: async () => (await import('./sheep.js')).registerSheepCommand,
  target: async () => (await import('./target.js')).registerTargetCommand,
  up: async () => (await import('./up.js')).registerUpCommand,
  drill: async () => (await import('./drill.js')).registerDrillCommand,
  dog: async () => {
    const { buildDogProgram } = await import('./dog.js');
    return (program) => program.addCommand(buildDogProgram('dog'));
  },
};

/** Build the program with the subcommand named in argv (all of them when none is named). */
async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('sheepfold')
    .description('Sheepdog-compatible distributed block store and NBD/iSCSI target')
    .version('0.1.0');
  const wanted = argv[2] !== undefined && argv[2] in SUBCOMMANDS ? [argv[2]] : Object.keys(SUBCOMMANDS);
  for (const name of wanted) (await SUBCOMMANDS[name]!())(program);
  return program;
}

buildProgram(process.argv)
  .then((program) => program.parseAsync(process.argv))
  .catch((err: unknown) => {
    process.stderr.write(`sheepfold: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
