// `sheepfold drill SCENARIO|all`: failover drills with a verifying workload. Starts its own deployment (the
// layout of `up`: 3 sheep with copies 3, targets A and B sharing a VDI for multipath, plus target C holding an
// exclusive lock for the stale-lock drill; target A reaches the sheep through fault proxies) in a temp dir or
// --dir, runs the scenarios one after another, shows a live progress line on stderr, and ends with a table (or
// the JSON report with --json), the JSON report in --out and an SVG timeline. Exit code 1 if any scenario failed.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { Deployment, HOST, SHEEP_READY, TARGET_READY, prepareCluster, sheepArgs, targetArgs } from '../drill/deploy.js';
import { FaultProxy } from '../drill/faultproxy.js';
import { renderSvg, renderTable, type DrillReport, type ScenarioResult } from '../drill/report.js';
import { SCENARIOS, SCENARIO_NAMES, brokenResult, type DrillEnv, type ScenarioName } from '../drill/scenarios.js';

interface DrillOptions {
  dir?: string;
  json?: boolean;
  out?: string;
  svg?: string;
  phaseSeconds: string;
  logLevel: string;
}

/** A port the OS says is free now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ port: 0, host: HOST }, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** True if DIR/up.json names a live process (a running `up` owns the directory). */
function dirInUse(dir: string): boolean {
  const f = path.join(dir, 'up.json');
  if (!fs.existsSync(f)) return false;
  try {
    const st = JSON.parse(fs.readFileSync(f, 'utf8')) as { children?: { pid: number | null }[] };
    return (st.children ?? []).some((c) => {
      if (c.pid === null) return false;
      try {
        process.kill(c.pid, 0);
        return true;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Progress on stderr: one rewritten line on a TTY, one line per phase otherwise. */
function progressPrinter(): { progress: (scenario: string, phase: string) => void; done: () => void } {
  const tty = process.stderr.isTTY === true;
  const t0 = Date.now();
  let last = '';
  return {
    progress: (scenario, phase) => {
      const line = `drill: [${((Date.now() - t0) / 1000).toFixed(1)}s] ${scenario}: ${phase}`;
      if (tty) {
        const width = process.stderr.columns ?? 100;
        process.stderr.write(`\r${line.slice(0, width - 1).padEnd(Math.min(width - 1, Math.max(last.length, line.length)))}`);
      } else process.stderr.write(`${line}\n`);
      last = line;
    },
    done: () => {
      if (tty && last !== '') process.stderr.write('\n');
    },
  };
}

/** Start the drill deployment in `dir`; returns the environment the scenarios run in. */
async function deploy(dir: string, o: DrillOptions, progress: DrillEnv['progress']): Promise<{ env: DrillEnv; stop: () => Promise<void> }> {
  const nSheep = 3;
  const sheepPorts: number[] = [];
  for (let i = 0; i < nSheep; i++) sheepPorts.push(await freePort());
  const nbdPorts = [await freePort(), await freePort(), await freePort()];
  const iscsiPorts = [await freePort(), await freePort()];
  const d = new Deployment(dir, { sheepPorts, nbdPorts, iscsiPorts });
  const proxies = sheepPorts.map((port) => new FaultProxy({ targetHost: HOST, targetPort: port }));
  const stop = async (): Promise<void> => {
    await d.stop(10_000);
    await Promise.all(proxies.map((p) => p.stop()));
  };
  try {
    const clusterDir = path.join(dir, 'cluster');
    for (let i = 0; i < nSheep; i++) {
      progress('setup', `starting sheep${i}`);
      await d.start({ name: `sheep${i}`, args: sheepArgs({ store: path.join(dir, `sheep${i}`), port: sheepPorts[i]!, zone: i, clusterDir, logLevel: 'info' }), ready: SHEEP_READY });
    }
    const vdi = 'drill';
    const exclVdi = 'drill-excl';
    await prepareCluster(sheepPorts[0]!, nSheep, '3', [[vdi, '256M'], [exclVdi, '64M']], (m) => progress('setup', m));
    const proxyPorts = await Promise.all(proxies.map((p) => p.start()));
    const addr = (p: number): string => `${HOST}:${p}`;
    const targets: DrillEnv['targets'] = {
      A: { nbd: addr(nbdPorts[0]!), iscsi: addr(iscsiPorts[0]!) },
      B: { nbd: addr(nbdPorts[1]!), iscsi: addr(iscsiPorts[1]!) },
      C: { nbd: addr(nbdPorts[2]!) },
    };
    const ordered = (first: number): string[] => [first, ...sheepPorts.filter((p) => p !== first)].map(addr);
    progress('setup', 'starting targets A, B and C');
    await d.start({
      name: 'targetA',
      args: targetArgs({ sheep: [0, 1, 2].map((i) => addr(proxyPorts[i]!)), exports: [`${vdi}=${vdi},shared`], nbd: targets.A.nbd, iscsi: targets.A.iscsi, logLevel: o.logLevel }),
      ready: TARGET_READY,
    });
    await d.start({
      name: 'targetB',
      args: targetArgs({ sheep: ordered(sheepPorts[1]!), exports: [`${vdi}=${vdi},shared`], nbd: targets.B.nbd, iscsi: targets.B.iscsi, logLevel: o.logLevel }),
      ready: TARGET_READY,
    });
    await d.start({
      name: 'targetC',
      args: targetArgs({ sheep: ordered(sheepPorts[2]!), exports: [`${exclVdi}=${exclVdi}`], nbd: targets.C.nbd, logLevel: o.logLevel }),
      ready: TARGET_READY,
    });
    const env: DrillEnv = {
      deploy: d,
      sheepPorts,
      vdi,
      iqn: `iqn.2026-11.org.sheepfold:${vdi}`,
      exclVdi,
      targets,
      proxies,
      proxyPorts,
      phaseSeconds: Number(o.phaseSeconds),
      progress,
    };
    return { env, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Register `sheepfold drill`. */
export function registerDrillCommand(program: Command): void {
  program
    .command('drill')
    .description(`failover drills with a verifying workload: ${SCENARIO_NAMES.join(', ')} or all`)
    .argument('<scenario>', `${SCENARIO_NAMES.join(' | ')} | all`)
    .option('--dir <dir>', 'keep the drill deployment (data, logs, up.json) in this directory (default: a temp dir, removed)')
    .option('--json', 'print the JSON report on stdout instead of the table')
    .option('--out <file>', 'also write the JSON report to this file')
    .option('--svg <file>', 'where to write the SVG timeline (default: DIR/drill.svg, or a file in the temp dir)')
    .option('--phase-seconds <n>', 'seconds of workload before, during and after each fault', '3')
    .option('--log-level <level>', 'log level of the targets', 'warn')
    .action(async (scenario: string, o: DrillOptions) => {
      const names: ScenarioName[] = scenario === 'all' ? [...SCENARIO_NAMES] : SCENARIO_NAMES.filter((n) => n === scenario);
      if (names.length === 0) throw new Error(`unknown scenario '${scenario}' (expected ${SCENARIO_NAMES.join(', ')} or all)`);
      if (!(Number(o.phaseSeconds) > 0)) throw new Error('--phase-seconds must be a positive number');
      const keep = o.dir !== undefined;
      const dir = keep ? path.resolve(o.dir as string) : fs.mkdtempSync(path.join(os.tmpdir(), 'sheepfold-drill-'));
      if (keep && dirInUse(dir)) {
        throw new Error(`${dir} belongs to a running 'sheepfold up' (live PIDs in up.json); the drill kills and restarts processes, so give it its own --dir`);
      }
      fs.mkdirSync(dir, { recursive: true });
      const { progress, done } = progressPrinter();
      const report: DrillReport = { started: new Date().toISOString(), host: os.hostname(), passed: false, scenarios: [] };
      let stop: (() => Promise<void>) | undefined;
      let stopping = false;
      const onSignal = (): void => {
        if (stopping) return;
        stopping = true;
        void (stop?.() ?? Promise.resolve()).finally(() => process.exit(130));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const dep = await deploy(dir, o, progress);
        stop = dep.stop;
        for (const name of names) {
          let res: ScenarioResult;
          try {
            res = await SCENARIOS[name](dep.env);
          } catch (e) {
            res = brokenResult(name, e);
          }
          report.scenarios.push(res);
          progress(name, res.passed ? 'PASS' : 'FAIL');
        }
      } catch (e) {
        report.scenarios.push(brokenResult('setup', e));
      } finally {
        progress('drill', 'stopping the deployment');
        await stop?.().catch(() => undefined);
        done();
      }
      report.passed = report.scenarios.length > 0 && report.scenarios.every((s) => s.passed);
      const json = JSON.stringify(report, null, 2);
      if (o.out) fs.writeFileSync(o.out, json);
      const svgPath = o.svg ?? (keep ? path.join(dir, 'drill.svg') : path.join(os.tmpdir(), `sheepfold-drill-${Date.now()}.svg`));
      fs.writeFileSync(svgPath, renderSvg(report));
      if (o.json) process.stdout.write(`${json}\n`);
      else {
        process.stdout.write(`${renderTable(report)}\n\n`);
        for (const s of report.scenarios) for (const n of s.notes) process.stdout.write(`${s.name}: ${n}\n`);
        process.stdout.write(`\ntimeline: ${svgPath}${o.out ? `\nreport: ${o.out}` : ''}\n`);
      }
      process.stderr.write(`drill: timeline ${svgPath}\n`);
      if (!keep) fs.rmSync(dir, { recursive: true, force: true });
      process.exit(report.passed ? 0 : 1);
    });
}
