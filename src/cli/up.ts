// `sheepfold up`: the embedded default — a local cluster of 3 sheep (copies 3) and two target hosts A and B
// (NBD and iSCSI; the demo VDI exported in shared mode for multipath) on 127.0.0.1, with data under
// ./.sheepfold (or --dir). A second run reuses the formatted cluster and the ports it used before. Ports are
// sheepdog's 7000+, NBD 10809+, iSCSI 3260+; a taken port is skipped for the next free one, and said.
// Ctrl-C (SIGINT) or SIGTERM stops the targets first (flush, release locks), then the sheep.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

const CLI_DIR = path.dirname(fileURLToPath(import.meta.url));
const SHEEPFOLD_JS = path.join(CLI_DIR, 'sheepfold.js');
const DOG_JS = path.join(CLI_DIR, 'dog.js');
const HOST = '127.0.0.1';

interface UpOptions {
  dir: string;
  vdi: string;
  size: string;
  sheep: string;
  copies: string;
  json?: boolean;
  logLevel: string;
  sheepPort: string;
  nbdPort: string;
  iscsiPort: string;
}

/** Ports chosen by an earlier run, reused so the sheep keep their identities. */
interface UpState {
  sheepPorts: number[];
  nbdPorts: number[];
  iscsiPorts: number[];
}

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number | string>;
}

/** True if HOST:port can be bound now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: HOST, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** The first free port at or after `want` that is not in `taken`; says so when it had to skip. */
async function pickPort(want: number, taken: Set<number>, what: string, say: (m: string) => void): Promise<number> {
  for (let p = want; p < want + 1000 && p < 65536; p++) {
    if (taken.has(p)) continue;
    if (await portFree(p)) {
      if (p !== want) say(`${what}: port ${want} is taken, using ${p}`);
      taken.add(p);
      return p;
    }
  }
  throw new Error(`${what}: no free port from ${want}`);
}

/** Start a child process, its stdout/stderr appended to a log file; resolves with the first stdout line matching. */
function startChild(name: string, args: string[], logFile: string, ready: RegExp, timeoutMs = 60_000): Promise<Child> {
  const log = fs.openSync(logFile, 'a');
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log] });
  fs.closeSync(log);
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not become ready within ${timeoutMs} ms (see ${logFile})`)), timeoutMs);
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      fs.appendFileSync(logFile, d);
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ name, proc, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready; see ${logFile}`));
    });
  });
}

/** Run dog against a sheep; resolves with stdout, rejects with dog's own error line. */
function dog(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [DOG_JS, ...args, '-a', HOST, '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`dog ${args.join(' ')}: ${err.trim() || `exit ${code}`}`))));
  });
}

async function waitFor(cond: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Stop children in order: SIGTERM, wait up to graceMs, then SIGKILL. */
async function stopChildren(children: Child[], graceMs = 15_000): Promise<void> {
  for (const c of children) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
    const t = setTimeout(() => c.proc.kill('SIGKILL'), graceMs);
    await c.exited;
    clearTimeout(t);
  }
}

/** What `up` prints for a person: endpoints and commands ready to paste. */
function instructions(o: { dir: string; vdi: string; sheepPorts: number[]; targets: { name: string; nbd: string; iscsi: string; iqn: string }[] }): string {
  const [a, b] = o.targets;
  if (!a || !b) return '';
  const [aHost, aPort] = a.iscsi.split(':');
  const [, bPort] = b.iscsi.split(':');
  const [, nbdPort] = a.nbd.split(':');
  const p0 = o.sheepPorts[0];
  return `
Sheepfold is up: ${o.sheepPorts.length} sheep (copies 3), targets A and B, data in ${o.dir}

  sheep     ${o.sheepPorts.map((p) => `${HOST}:${p}`).join('  ')}
  target A  nbd ${a.nbd}  iscsi ${a.iscsi}  ${a.iqn}  (preferred path)
  target B  nbd ${b.nbd}  iscsi ${b.iscsi}  ${b.iqn}

NBD (libnbd, QEMU, the Linux kernel client):
  nbdinfo nbd://${a.nbd}/${o.vdi}
  qemu-img convert -n -p -f raw -O raw disk.img nbd://${a.nbd}/${o.vdi}
  nbd-client ${aHost} ${nbdPort} /dev/nbd0 -N ${o.vdi}

iSCSI (open-iscsi), both portals:
  iscsiadm -m discovery -t sendtargets -p ${aHost}:${aPort}
  iscsiadm -m node -T ${a.iqn} -p ${aHost}:${aPort} --login
  iscsiadm -m node -T ${b.iqn} -p ${aHost}:${bPort} --login
  qemu-img info iscsi://${a.iscsi}/${a.iqn}/0

dm-multipath (/etc/multipath.conf), one map over both target hosts, ALUA priorities, failback:
  devices {
    device {
      vendor "SHEEPFLD"
      product "VIRTUAL-DISK"
      path_grouping_policy group_by_prio
      prio alua
      hardware_handler "1 alua"
      path_checker tur
      failback immediate
      no_path_retry 12
    }
  }

The real tgtd on the same VDI (shared lock through the third sheep, which no target uses):
  tgtd -f -C 9 --iscsi portal=127.0.0.1:3270 &
  tgtadm -C 9 --lld iscsi --mode target --op new --tid 1 --targetname iqn.2026-11.local.tgtd:${o.vdi}
  tgtadm -C 9 --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --bstype sheepdog --backing-store tcp:${HOST}:${o.sheepPorts[2] ?? p0}:${o.vdi}
  tgtadm -C 9 --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL

dog:
  dog node list -p ${p0}
  dog vdi list -p ${p0}
  dog vdi lock list -p ${p0}
  dog cluster info -p ${p0}

Ctrl-C stops everything (targets flush and release their locks first).
`;
}

/** Register `sheepfold up`. */
export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('start the embedded default: 3 sheep (copies 3) and target hosts A and B on 127.0.0.1')
    .option('--dir <dir>', 'data directory (kept across runs)', '.sheepfold')
    .option('--vdi <name>', 'the demo VDI exported by both targets', 'demo')
    .option('--size <size>', 'size of the demo VDI when it is created', '4G')
    .option('--sheep <n>', 'number of sheep', '3')
    .option('--copies <n>', 'copies of every object', '3')
    .option('--json', 'print one JSON line once ready')
    .option('--log-level <level>', 'log level of the child processes', 'warn')
    .option('--sheep-port <port>', 'first sheep port (tgtd reaches only ports < 10000)', '7000')
    .option('--nbd-port <port>', 'NBD port of target A (B takes the next free one)', '10809')
    .option('--iscsi-port <port>', 'iSCSI port of target A (B takes the next free one)', '3260')
    .action(async (o: UpOptions) => {
      const dir = path.resolve(o.dir);
      const logs = path.join(dir, 'logs');
      fs.mkdirSync(logs, { recursive: true });
      const say = (m: string): void => void process.stderr.write(`up: ${m}\n`);
      const statePath = path.join(dir, 'up.json');
      const prev: Partial<UpState> = fs.existsSync(statePath) ? (JSON.parse(fs.readFileSync(statePath, 'utf8')) as UpState) : {};
      const nSheep = Number(o.sheep);
      const taken = new Set<number>();
      const sheepPorts: number[] = [];
      const [sp, np, ip] = [Number(o.sheepPort), Number(o.nbdPort), Number(o.iscsiPort)];
      for (let i = 0; i < nSheep; i++) sheepPorts.push(await pickPort(prev.sheepPorts?.[i] ?? sp + i, taken, `sheep ${i}`, say));
      const nbdPorts = [
        await pickPort(prev.nbdPorts?.[0] ?? np, taken, 'target A nbd', say),
        await pickPort(prev.nbdPorts?.[1] ?? np + 1, taken, 'target B nbd', say),
      ];
      const iscsiPorts = [
        await pickPort(prev.iscsiPorts?.[0] ?? ip, taken, 'target A iscsi', say),
        await pickPort(prev.iscsiPorts?.[1] ?? ip + 1, taken, 'target B iscsi', say),
      ];
      fs.writeFileSync(statePath, JSON.stringify({ sheepPorts, nbdPorts, iscsiPorts }, null, 2));

      const children: Child[] = [];
      let stopping = false;
      const shutdown = async (code: number): Promise<never> => {
        if (!stopping) {
          stopping = true;
          say('stopping targets, then sheep ...');
          const targets = children.filter((c) => c.name.startsWith('target'));
          const sheep = children.filter((c) => c.name.startsWith('sheep'));
          await stopChildren(targets);
          await stopChildren(sheep.reverse());
          say('stopped');
        }
        process.exit(code);
      };
      process.on('SIGINT', () => void shutdown(0));
      process.on('SIGTERM', () => void shutdown(0));

      try {
        const clusterDir = path.join(dir, 'cluster');
        for (let i = 0; i < nSheep; i++) {
          const port = sheepPorts[i]!;
          children.push(
            await startChild(
              `sheep${i}`,
              [SHEEPFOLD_JS, 'sheep', '--store', path.join(dir, `sheep${i}`), '--port', String(port), '--zone', String(i), '--cluster', `local:${clusterDir}`, '--json', '--log-level', o.logLevel],
              path.join(logs, `sheep${i}.log`),
              /"event":"sheep_ready"/,
            ),
          );
        }
        const p0 = sheepPorts[0]!;
        await waitFor(async () => (await dog(p0, ['node', 'list', '--json'])).split('"addr"').length - 1 === nSheep, `${nSheep} sheep to join`);
        const info = await dog(p0, ['cluster', 'info']);
        if (/Waiting for cluster to be formatted|not formatted/i.test(info)) {
          say(`formatting the cluster with ${o.copies} copies`);
          await dog(p0, ['cluster', 'format', '-c', o.copies]);
        } else say('reusing the formatted cluster');
        await waitFor(async () => /running/i.test(await dog(p0, ['cluster', 'info'])), 'the cluster to run');
        const list = await dog(p0, ['vdi', 'list', '-r']);
        if (!list.split('\n').some((l) => l.split(/\s+/)[1] === o.vdi)) {
          say(`creating VDI ${o.vdi} (${o.size})`);
          await dog(p0, ['vdi', 'create', o.vdi, o.size]);
        }
        const targets: { name: string; nbd: string; iscsi: string; iqn: string }[] = [];
        for (const [k, name] of ['A', 'B'].entries()) {
          const gateway = sheepPorts[k % nSheep]!;
          const fallback = sheepPorts.filter((p) => p !== gateway).map((p) => `${HOST}:${p}`);
          const nbd = `${HOST}:${nbdPorts[k]}`;
          const iscsi = `${HOST}:${iscsiPorts[k]}`;
          children.push(
            await startChild(
              `target${name}`,
              [SHEEPFOLD_JS, 'target', '--sheep', [`${HOST}:${gateway}`, ...fallback].join(','), '--export', `${o.vdi}=${o.vdi},shared`, '--nbd', nbd, '--iscsi', iscsi, '--json', '--log-level', o.logLevel],
              path.join(logs, `target${name}.log`),
              /"ready":true/,
            ),
          );
          targets.push({ name, nbd, iscsi, iqn: `iqn.2026-11.org.sheepfold:${o.vdi}` });
        }
        const ready = { ready: true, dir, vdi: o.vdi, sheep: sheepPorts.map((port) => ({ port })), targets };
        if (o.json) process.stdout.write(`${JSON.stringify(ready)}\n`);
        else process.stdout.write(instructions({ dir, vdi: o.vdi, sheepPorts, targets }));
        // Stay up; if a child dies on its own, say so and stop the rest.
        const first = await Promise.race(children.map((c) => c.exited.then((code) => ({ c, code }))));
        if (!stopping) {
          say(`${first.c.name} exited unexpectedly (${first.code}); see ${path.join(logs, `${first.c.name}.log`)}`);
          await shutdown(1);
        }
      } catch (err) {
        say(err instanceof Error ? err.message : String(err));
        await shutdown(1);
      }
    });
}
