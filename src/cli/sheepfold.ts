#!/usr/bin/env node
// `sheepfold`: one binary for every Sheepfold process — sheep, target, dog, up, drill.
// Each subcommand lives in its own module and registers itself on the program.
import { Command } from 'commander';
import { registerSheepCommand } from './sheep.js';
import { registerTargetCommand } from './target.js';
import { buildDogProgram } from './dog.js';

const program = new Command('sheepfold')
  .description('Sheepdog-compatible distributed block store and NBD/iSCSI target')
  .version('0.1.0');

registerSheepCommand(program);
registerTargetCommand(program);
program.addCommand(buildDogProgram('dog'));

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`sheepfold: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
