// `sheepfold up`: the embedded default — a local cluster of 3 sheep (copies 3) and two target hosts A and B
// (NBD and iSCSI; the demo VDI exported in shared mode for multipath) on 127.0.0.1, with data under
// ./.sheepfold (or --dir). A second run reuses the formatted cluster and the ports it used before. Ports are
// sheepdog's 7000+, NBD 10809+, iSCSI 3260+; a taken port is skipped for the next free one, and said.
// Ctrl-C (SIGINT) or SIGTERM stops the targets first (flush, release locks), then the sheep.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Deployment, HOST, SHEEP_READY, TARGET_READY, pickPort, prepareCluster, sheepArgs, targetArgs } from '../drill/deploy.js';

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
      detect_prio no
      hardware_handler "1 alua"
      path_checker tur
      failback immediate
      no_path_retry 30
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
  dog event watch -p ${p0}      # lock, invalidation, node, epoch and recovery events as JSON lines

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
      const deploy = new Deployment(dir, { sheepPorts, nbdPorts, iscsiPorts });
      deploy.saveState();

      let stopping = false;
      const shutdown = async (code: number): Promise<never> => {
        if (!stopping) {
          stopping = true;
          say('stopping targets, then sheep ...');
          await deploy.stop();
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
          await deploy.start({ name: `sheep${i}`, args: sheepArgs({ store: path.join(dir, `sheep${i}`), port, zone: i, clusterDir, logLevel: o.logLevel }), ready: SHEEP_READY });
        }
        await prepareCluster(sheepPorts[0]!, nSheep, o.copies, [[o.vdi, o.size]], say);
        const targets: { name: string; nbd: string; iscsi: string; iqn: string }[] = [];
        for (const [k, name] of ['A', 'B'].entries()) {
          const gateway = sheepPorts[k % nSheep]!;
          const fallback = sheepPorts.filter((p) => p !== gateway).map((p) => `${HOST}:${p}`);
          const nbd = `${HOST}:${nbdPorts[k]}`;
          const iscsi = `${HOST}:${iscsiPorts[k]}`;
          await deploy.start({
            name: `target${name}`,
            args: targetArgs({ sheep: [`${HOST}:${gateway}`, ...fallback], exports: [`${o.vdi}=${o.vdi},shared`], nbd, iscsi, logLevel: o.logLevel }),
            ready: TARGET_READY,
          });
          targets.push({ name, nbd, iscsi, iqn: `iqn.2026-11.org.sheepfold:${o.vdi}` });
        }
        const ready = { ready: true, dir, vdi: o.vdi, sheep: sheepPorts.map((port) => ({ port })), targets };
        if (o.json) process.stdout.write(`${JSON.stringify(ready)}\n`);
        else process.stdout.write(instructions({ dir, vdi: o.vdi, sheepPorts, targets }));
        // Stay up; if a child dies on its own, say so and stop the rest.
        const first = await Promise.race([...deploy.live.values()].map((c) => c.exited.then((code) => ({ c, code }))));
        if (!stopping) {
          say(`${first.c.name} exited unexpectedly (${first.code}); see ${deploy.logFile(first.c.name)}`);
          await shutdown(1);
        }
      } catch (err) {
        say(err instanceof Error ? err.message : String(err));
        await shutdown(1);
      }
    });
}
