// `sheepfold target`: the NBD/iSCSI target process (placeholder until the target module lands).
import type { Command } from 'commander';

export function registerTargetCommand(program: Command): void {
  program.command('target').description('run the NBD/iSCSI target');
}
