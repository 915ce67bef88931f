#!/usr/bin/env node
// `dog`: the admin CLI with real Sheepdog syntax (placeholder until the dog module lands).
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';

export function buildDogProgram(name = 'dog'): Command {
  return new Command(name).description('Sheepdog administration: cluster, node, vdi');
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildDogProgram().parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`dog: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
