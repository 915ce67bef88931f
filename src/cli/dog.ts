#!/usr/bin/env node
// `dog`: the Sheepdog admin CLI with real dog syntax (`dog vdi create NAME SIZE`, `dog vdi snapshot -s TAG NAME`,
// `dog node list`, ...). Options go after the command words; every command takes `-a ADDR -p PORT` (default
// 127.0.0.1:7000) and `--json`. Command logic lives in src/dog/**; this file only declares the command tree.
// Errors are one line on stderr and a non-zero exit code (dog's exits.h values).
import { Command, Option } from 'commander';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import readline from 'node:readline';
import { DogContext, EXIT_USAGE, describeFailure, type CommonOptions } from '../dog/context.js';
import { clusterFormat, clusterInfo, clusterShutdown, type FormatOptions } from '../dog/cluster.js';
import { nodeInfo, nodeList } from '../dog/node.js';
import { clusterCheck, nodeKill, nodeRecovery, recoveryGetThrottle, recoverySetThrottle, type RecoveryOptions } from '../dog/node-recovery.js';
import {
  vdiCheck,
  vdiClone,
  vdiCreate,
  vdiDelete,
  vdiList,
  vdiLockList,
  vdiLockUnlock,
  vdiObjectLocation,
  vdiObjectMap,
  vdiResize,
  vdiRollback,
  vdiSnapshot,
  vdiTree,
  type CreateOptions,
} from '../dog/vdi.js';
import { vdiRead, vdiWrite } from '../dog/vdi-io.js';
import { eventWatch } from '../dog/event.js';

type Opts = CommonOptions & Record<string, unknown>;

/** Add the options every dog command takes. */
function common(cmd: Command): Command {
  return cmd
    .option('-a, --address <addr>', 'sheep address', '127.0.0.1')
    .option('-p, --port <port>', 'sheep port', '7000')
    .option('--json', 'machine-readable JSON output')
    .option('-r, --raw', 'raw output mode: omit headers, separate fields with single spaces')
    .option('-v, --verbose', 'print more information');
}

/** Run a command body with a context; map any failure to one stderr line and an exit code. */
async function run(opts: Opts, body: (ctx: DogContext) => Promise<void>): Promise<void> {
  let ctx: DogContext | null = null;
  try {
    ctx = new DogContext(opts);
    await body(ctx);
  } catch (err) {
    const f = describeFailure(err);
    process.stderr.write(`${f.message}\n`);
    process.exitCode = f.exitCode;
  } finally {
    ctx?.close();
  }
}

/** Ask a yes/no question as dog does: the question on stdout (stderr with --json, so the JSON stays clean), one
 * line read from stdin (a terminal or a pipe, so `echo yes | dog ...` answers it); "yes" in any case is yes,
 * anything else or no input at all is no. */
function confirmer(json: boolean): (question: string) => Promise<boolean> {
  return (question) => {
    (json ? process.stderr : process.stdout).write(question);
    const rl = readline.createInterface({ input: process.stdin, terminal: false });
    return new Promise((resolve) => {
      let answered = false;
      rl.once('line', (line) => {
        answered = true;
        rl.close();
        process.stdin.pause();
        resolve(line.slice(0, 3).toLowerCase() === 'yes');
      });
      rl.once('close', () => {
        if (!answered) resolve(false);
      });
    });
  };
}

function leaf(parent: Command, name: string, description: string): Command {
  return common(parent.command(name).description(description));
}

function buildCluster(dog: Command): void {
  const cluster = dog.command('cluster').description('cluster commands: format, info, shutdown');
  leaf(cluster, 'format', 'create a Sheepdog store (locking on by default; --no-lock turns it off)')
    .option('-c, --copies <n>', 'default redundancy: number of copies, or D:P for erasure coding')
    .option('-z, --block-size-shift <shift>', 'default object size shift (20..31, default 22)')
    .option('-b, --store <name>', 'backend store (plain)')
    .option('-l, --lock', 'lock VDIs to exclude multiple users (default)')
    .option('--no-lock', 'disable VDI locking and inode coherence')
    .option('-t, --strict', 'refuse writes when fewer zones than copies')
    .option('-R, --recycle-vid', 'recycle VIDs of deleted VDI families')
    .option('-V, --fixed-vnodes', 'fixed vnodes instead of the automatic calculation')
    .option('-F, --avoid-diskfull', 'skip recovery that could fill a disk')
    .option('-f, --force', 'do not ask for confirmation')
    .action((o: Opts) =>
      run(o, (ctx) =>
        clusterFormat(
          ctx,
          {
            copies: o.copies as string | undefined,
            blockSizeShift: o.blockSizeShift as string | undefined,
            lock: o.lock as boolean | undefined,
            strict: o.strict as boolean | undefined,
            recycleVid: o.recycleVid as boolean | undefined,
            fixedVnodes: o.fixedVnodes as boolean | undefined,
            avoidDiskfull: o.avoidDiskfull as boolean | undefined,
            force: o.force as boolean | undefined,
            store: o.store as string | undefined,
          } satisfies FormatOptions,
          confirmer(o.json === true),
        ),
      ),
    );
  leaf(cluster, 'info', 'show cluster status and epoch history').action((o: Opts) => run(o, clusterInfo));
  leaf(cluster, 'shutdown', 'stop every sheep of the cluster').action((o: Opts) => run(o, clusterShutdown));
  leaf(cluster, 'check', 'check and repair the replicas of every VDI').action((o: Opts) => run(o, clusterCheck));
}

function recoveryOptions(o: Opts): RecoveryOptions {
  return {
    maxExecCount: o.maxExecCount as string | undefined,
    queueWorkInterval: o.queueWorkInterval as string | undefined,
    progress: o.progress as boolean | undefined,
  };
}

function buildNode(dog: Command): void {
  const node = dog.command('node').description('node commands: list, info');
  leaf(node, 'list', 'list the nodes').action((o: Opts) => run(o, nodeList));
  leaf(node, 'info', 'show store usage per node').action((o: Opts) => run(o, nodeInfo));
  const recovery = leaf(node, 'recovery', 'show recovery information of nodes (default), or set/get the recovery throttle of a node')
    .option('-P, --progress', 'show progress of recovery in the node')
    .option('--max-exec-count <n>', 'throttle every node: objects recovered in parallel (0 = default)')
    .option('--queue-work-interval <ms>', 'throttle every node: pause between recovered objects')
    .action((o: Opts) => run(o, (ctx) => nodeRecovery(ctx, recoveryOptions(o))));
  // Options after a subcommand word (`recovery set-throttle 1 1 -p 7001`) belong to the subcommand; that takes
  // positional options on every command above it as well.
  dog.enablePositionalOptions();
  node.enablePositionalOptions();
  recovery.enablePositionalOptions();
  leaf(recovery, 'info', 'show recovery information of nodes (default)')
    .option('-P, --progress', 'show progress of recovery in the node')
    .action((o: Opts) => run(o, (ctx) => nodeRecovery(ctx, recoveryOptions(o))));
  leaf(recovery, 'set-throttle', 'set new throttling of the node: at most <max> objects every <interval> ms (0 0: none)')
    .argument('[max]')
    .argument('[interval]')
    .action((max: string | undefined, interval: string | undefined, o: Opts) => run(o, (ctx) => recoverySetThrottle(ctx, max, interval)));
  leaf(recovery, 'get-throttle', 'get current throttling of the node').action((o: Opts) => run(o, recoveryGetThrottle));
  leaf(node, 'kill', 'stop the node with this id (from node list)')
    .argument('<id>')
    .action((id: string, o: Opts) => run(o, (ctx) => nodeKill(ctx, id)));
}

function buildVdi(dog: Command): void {
  const vdi = dog.command('vdi').description('virtual disk image commands');
  leaf(vdi, 'create', 'create a VDI')
    .argument('<name>')
    .argument('<size>', 'size, e.g. 512M or 10G')
    .option('-c, --copies <n>', 'redundancy: copies, or D:P')
    .option('-z, --block-size-shift <shift>', 'object size shift (20..31)')
    .option('-P, --prealloc', 'preallocate every data object')
    .action((name: string, size: string, o: Opts) =>
      run(o, (ctx) =>
        vdiCreate(ctx, name, size, {
          copies: o.copies as string | undefined,
          blockSizeShift: o.blockSizeShift as string | undefined,
          prealloc: o.prealloc as boolean | undefined,
        } satisfies CreateOptions),
      ),
    );
  leaf(vdi, 'list', 'list VDIs')
    .argument('[name]')
    .action((name: string | undefined, o: Opts) => run(o, (ctx) => vdiList(ctx, name)));
  leaf(vdi, 'tree', 'show VDI families as trees').action((o: Opts) => run(o, vdiTree));
  leaf(vdi, 'snapshot', 'take a snapshot of a VDI')
    .argument('<name>')
    .option('-s, --snapshot <tag>', 'snapshot tag')
    .action((name: string, o: Opts) => run(o, (ctx) => vdiSnapshot(ctx, name, o.snapshot as string | undefined)));
  leaf(vdi, 'clone', 'clone a snapshot into a new VDI')
    .argument('<src>')
    .argument('<dst>')
    .option('-s, --snapshot <tag>', 'snapshot tag or id to clone')
    .action((src: string, dst: string, o: Opts) => run(o, (ctx) => vdiClone(ctx, src, dst, o.snapshot as string | undefined)));
  leaf(vdi, 'delete', 'delete a VDI or one of its snapshots')
    .argument('<name>')
    .option('-s, --snapshot <tag>', 'snapshot tag or id')
    .action((name: string, o: Opts) => run(o, (ctx) => vdiDelete(ctx, name, o.snapshot as string | undefined)));
  leaf(vdi, 'rollback', 'roll a VDI back to one of its snapshots')
    .argument('<name>')
    .option('-s, --snapshot <tag>', 'snapshot tag or id')
    .option('-f, --force', 'do not ask for confirmation')
    .action((name: string, o: Opts) => run(o, (ctx) => vdiRollback(ctx, name, o.snapshot as string | undefined, o.force === true, confirmer(o.json === true))));
  leaf(vdi, 'resize', 'grow a VDI')
    .argument('<name>')
    .argument('<size>')
    .action((name: string, size: string, o: Opts) => run(o, (ctx) => vdiResize(ctx, name, size)));
  leaf(vdi, 'read', 'read bytes of a VDI to stdout')
    .argument('<name>')
    .argument('[offset]')
    .argument('[len]')
    .option('-s, --snapshot <tag>', 'read a snapshot (tag or id)')
    .action((name: string, off: string | undefined, len: string | undefined, o: Opts) =>
      run(o, (ctx) => vdiRead(ctx, name, off, len, o.snapshot as string | undefined, process.stdout)),
    );
  leaf(vdi, 'write', 'write stdin into a VDI')
    .argument('<name>')
    .argument('[offset]')
    .argument('[len]')
    .action((name: string, off: string | undefined, len: string | undefined, o: Opts) => run(o, (ctx) => vdiWrite(ctx, name, off, len, process.stdin)));
  leaf(vdi, 'check', 'check and repair the replicas of a VDI')
    .argument('<name>')
    .option('-s, --snapshot <tag>', 'check a snapshot (tag or id)')
    .action((name: string, o: Opts) => run(o, (ctx) => vdiCheck(ctx, name, o.snapshot as string | undefined)));

  const object = vdi.command('object').description('object commands: map, location');
  leaf(object, 'map', 'show the object index of a VDI')
    .argument('<name>')
    .option('-i, --index <idx>', 'only this index')
    .option('-s, --snapshot <tag>', 'snapshot tag or id')
    .action((name: string, o: Opts) => run(o, (ctx) => vdiObjectMap(ctx, name, o.snapshot as string | undefined, o.index as string | undefined)));
  leaf(object, 'location', 'show which nodes hold an object of a VDI (the inode without an index)')
    .argument('<name>')
    .argument('[idx]')
    .addOption(new Option('-i, --index <idx>', 'object index'))
    .option('-s, --snapshot <tag>', 'snapshot tag or id')
    .action((name: string, idx: string | undefined, o: Opts) =>
      run(o, (ctx) => vdiObjectLocation(ctx, name, o.snapshot as string | undefined, idx ?? (o.index as string | undefined))),
    );

  const lock = vdi.command('lock').description('lock commands: list, unlock');
  leaf(lock, 'list', 'list locked VDIs').action((o: Opts) => run(o, vdiLockList));
  leaf(lock, 'unlock', 'check and repair the replicas of a VDI, then release its lock')
    .argument('<name>')
    .option('-s, --snapshot <tag>', 'snapshot tag or id')
    .action((name: string, o: Opts) => run(o, (ctx) => vdiLockUnlock(ctx, name, o.snapshot as string | undefined)));
}

function buildEvent(dog: Command): void {
  const event = dog.command('event').description('event feed commands: watch');
  leaf(event, 'watch', 'print the sheep\'s events (locks, invalidations, nodes, epochs, recovery, VDIs) as JSON lines')
    .option('--vdi <name>', 'only this VDI\'s lock, invalidate and vdi events')
    .option('--type <types>', 'comma-separated event types: lock,invalidate,node,epoch,recovery,vdi')
    .option('--count <n>', 'exit after n events')
    .action((o: Opts) => run(o, (ctx) => eventWatch(ctx, { vdi: o.vdi as string | undefined, type: o.type as string | undefined, count: o.count as string | undefined })));
}

export function buildDogProgram(name = 'dog'): Command {
  const dog = new Command(name).description('Sheepdog administration: cluster, node, vdi');
  buildCluster(dog);
  buildNode(dog);
  buildVdi(dog);
  buildEvent(dog);
  const usage = (cmd: Command): void => {
    cmd.exitOverride((err) => {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') process.exit(0);
      process.exit(EXIT_USAGE);
    });
    cmd.commands.forEach(usage);
  };
  usage(dog);
  return dog;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildDogProgram().parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`dog: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
