// `sheepfold sheep`: start one storage node (placeholder until the sheep module lands).
import type { Command } from 'commander';

export function registerSheepCommand(program: Command): void {
  program.command('sheep').description('run one sheep storage node');
}
