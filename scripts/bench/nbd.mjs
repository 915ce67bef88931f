// NBD benchmark: our target (MemoryDevice, FileDevice) against nbdkit `memory` and qemu-nbd (raw file), with
// fio's nbd engine (1M sequential read/write at QD16; 4k random read/write at QD1/16/32) and nbdcopy 1 GiB in
// and out. Prints a markdown table with each of our figures as a ratio to its peer. Run after `npm run build`.
// Also our target on a VDI of a local 3-node cluster (3 copies; nbdcopy of --vdi-size, fio cells the same), with
// no peer of its own: its column is shown next to qemu-nbd's. --no-cluster leaves it out.
// Usage: scripts/bench/nbd [--runtime SECONDS] [--reps N] [--size 1G] [--vdi-size 256M] [--no-cluster] [--json FILE] [--dir DIR]
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout, clearTimeout } from 'node:timers';
import { URL } from 'node:url';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const BIN = path.join(process.env.DIST ?? path.join(ROOT, 'dist'), 'cli', 'sheepfold.js');
const DOG = path.join(path.dirname(BIN), 'dog.js');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const RUNTIME = Number(opt('--runtime', '3'));
const REPS = Number(opt('--reps', '3'));
const SIZE_G = Number(String(opt('--size', '1G')).replace(/G$/i, ''));
const SIZE = SIZE_G * 1024 ** 3;
const JSON_OUT = opt('--json', undefined);
const CLUSTER = !args.includes('--no-cluster');
const VDI_MB = Number(String(opt('--vdi-size', '256M')).replace(/M$/i, ''));
const DIR = opt('--dir', undefined) ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sheepfold-bench-nbd-'));
const procs = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port) {
  for (let i = 0; i < 400; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}

function startProc(cmd, argv) {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  const p = { child, err: () => err };
  procs.push(p);
  return p;
}

async function stopAll() {
  // Reverse order: targets stop before the sheep they talk to.
  for (const p of procs.splice(0).reverse()) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
    const exited = new Promise((r) => p.child.once('exit', r));
    p.child.kill('SIGTERM');
    const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

/** Resolves once the process prints `re` (on stdout or stderr). */
function waitOutput(child, re) {
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d) => {
      out += d.toString();
      if (re.test(out)) resolve();
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (c) => reject(new Error(`exited ${c}: ${out.slice(-2000)}`)));
  });
}

function dog(argv, port) {
  const r = spawnSync(process.execPath, [DOG, ...argv, '-p', String(port)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dog ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A local 3-node cluster (3 copies) with one VDI, and our target exporting it. */
async function startClusterTarget() {
  const clusterDir = path.join(DIR, 'cluster');
  const ports = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    ports.push(port);
    const child = spawn(process.execPath, [BIN, 'sheep', '--store', path.join(DIR, `n${i}`), '--port', String(port), '--cluster', `local:${clusterDir}`, '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push({ child, err: () => '' });
    await waitOutput(child, /sheep ready/);
  }
  dog(['cluster', 'format', '-c', '3'], ports[0]);
  dog(['vdi', 'create', 'bench', `${VDI_MB}M`], ports[0]);
  const port = await freePort();
  const sheep = ports.map((p) => `127.0.0.1:${p}`).join(',');
  startProc(process.execPath, [BIN, 'target', '--sheep', sheep, '--nbd', `127.0.0.1:${port}`, '--log-level', 'warn', '--export', 'vdi=bench']);
  await waitPort(port);
  return `nbd://127.0.0.1:${port}/vdi`;
}

function mkImage(file) {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, SIZE);
}

const servers = {
  'nbdkit-memory': async () => {
    const port = await freePort();
    startProc('nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(port), 'memory', String(SIZE)]);
    await waitPort(port);
    return `nbd://127.0.0.1:${port}/`;
  },
  'ours-memory': async () => {
    const port = await freePort();
    startProc(process.execPath, [BIN, 'target', '--nbd', `127.0.0.1:${port}`, '--log-level', 'warn', '--export', `mem=mem:${SIZE}`]);
    await waitPort(port);
    return `nbd://127.0.0.1:${port}/mem`;
  },
  'qemu-nbd-file': async () => {
    const port = await freePort();
    const img = path.join(DIR, 'qemu.img');
    mkImage(img);
    startProc('qemu-nbd', ['-f', 'raw', '-b', '127.0.0.1', '-p', String(port), '-x', '', '-t', '-e', '16', '--cache=writeback', '--aio=threads', img]);
    await waitPort(port);
    return `nbd://127.0.0.1:${port}/`;
  },
  ...(CLUSTER ? { 'ours-vdi3': startClusterTarget } : {}),
  'ours-file': async () => {
    const port = await freePort();
    const img = path.join(DIR, 'ours.img');
    mkImage(img);
    startProc(process.execPath, [BIN, 'target', '--nbd', `127.0.0.1:${port}`, '--log-level', 'warn', '--export', `file=file:${img}`]);
    await waitPort(port);
    return `nbd://127.0.0.1:${port}/file`;
  },
};

const FIO_TESTS = [
  { key: 'seq-write-1M-qd16', rw: 'write', bs: '1M', qd: 16, unit: 'MiB/s' },
  { key: 'seq-read-1M-qd16', rw: 'read', bs: '1M', qd: 16, unit: 'MiB/s' },
  { key: 'randread-4k-qd1', rw: 'randread', bs: '4k', qd: 1, unit: 'IOPS' },
  { key: 'randread-4k-qd16', rw: 'randread', bs: '4k', qd: 16, unit: 'IOPS' },
  { key: 'randread-4k-qd32', rw: 'randread', bs: '4k', qd: 32, unit: 'IOPS' },
  { key: 'randwrite-4k-qd1', rw: 'randwrite', bs: '4k', qd: 1, unit: 'IOPS' },
  { key: 'randwrite-4k-qd16', rw: 'randwrite', bs: '4k', qd: 16, unit: 'IOPS' },
  { key: 'randwrite-4k-qd32', rw: 'randwrite', bs: '4k', qd: 32, unit: 'IOPS' },
];

function fio(uri, t) {
  const r = spawnSync(
    'fio',
    [
      '--name=b', '--ioengine=nbd', `--uri=${uri}`, `--rw=${t.rw}`, `--bs=${t.bs}`, `--iodepth=${t.qd}`,
      '--time_based', `--runtime=${RUNTIME}`, '--ramp_time=1', '--output-format=json',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const out = r.stdout ?? '';
  const json = out.slice(out.indexOf('{'));
  if (r.status !== 0 || json === '') throw new Error(`fio ${t.key} on ${uri} failed: ${r.stderr}`);
  const job = JSON.parse(json).jobs[0];
  const side = t.rw.includes('read') ? job.read : job.write;
  return t.unit === 'IOPS' ? side.iops : side.bw / 1024;
}

function timed(cmd, argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr}`);
  return s;
}

async function main() {
  for (const c of ['fio', 'nbdcopy', 'nbdkit', 'qemu-nbd']) {
    if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) throw new Error(`${c} is not installed`);
  }
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run npm run build first`);
  const src = path.join(DIR, 'random.img');
  if (!fs.existsSync(src) || fs.statSync(src).size !== SIZE) {
    const fd = fs.openSync(src, 'w');
    for (let o = 0; o < SIZE; o += 64 * 1024 * 1024) fs.writeSync(fd, crypto.randomBytes(Math.min(64 * 1024 * 1024, SIZE - o)));
    fs.closeSync(fd);
  }
  // All four servers run at once and every cell is measured round-robin (peer, ours, peer, ours, ...) REPS
  // times; the median is reported. On a shared, noisy box this keeps drift from favouring either side.
  const vdiSrc = path.join(DIR, 'random-vdi.img');
  if (CLUSTER && (!fs.existsSync(vdiSrc) || fs.statSync(vdiSrc).size !== VDI_MB * 1024 * 1024)) {
    fs.writeFileSync(vdiSrc, crypto.randomBytes(VDI_MB * 1024 * 1024));
  }
  const uris = {};
  for (const [name, startServer] of Object.entries(servers)) uris[name] = await startServer();
  const samples = Object.fromEntries(Object.keys(servers).map((n) => [n, {}]));
  const add = (name, key, v) => (samples[name][key] ??= []).push(v);
  try {
    for (let rep = 0; rep < REPS; rep++) {
      for (const name of Object.keys(servers)) {
        // nbdcopy first: it also fills the device, so reads below hit data, not holes.
        const [from, bytes] = name === 'ours-vdi3' ? [vdiSrc, VDI_MB * 1024 * 1024] : [src, SIZE];
        add(name, 'nbdcopy-in-1G', bytes / 1024 ** 2 / timed('nbdcopy', [from, uris[name]]));
        add(name, 'nbdcopy-out-1G', bytes / 1024 ** 2 / timed('nbdcopy', [uris[name], 'null:']));
      }
      for (const t of FIO_TESTS) {
        for (const name of Object.keys(servers)) add(name, t.key, fio(uris[name], t));
        process.stderr.write(`rep ${rep + 1}/${REPS} ${t.key}: ${Object.keys(servers).map((n) => `${n}=${samples[n][t.key].at(-1).toFixed(0)}`).join(' ')}\n`);
      }
    }
  } finally {
    await stopAll();
  }
  const median = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  const results = Object.fromEntries(
    Object.entries(samples).map(([n, byKey]) => [n, Object.fromEntries(Object.entries(byKey).map(([k, xs]) => [k, median(xs)]))]),
  );
  const units = Object.fromEntries([...FIO_TESTS.map((t) => [t.key, t.unit]), ['nbdcopy-in-1G', 'MiB/s'], ['nbdcopy-out-1G', 'MiB/s']]);
  const keys = ['nbdcopy-in-1G', 'nbdcopy-out-1G', ...FIO_TESTS.map((t) => t.key)];
  const fmt = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const ratio = (a, b) => `${(a / b).toFixed(2)}×`;
  const m = results['ours-memory'];
  const k = results['nbdkit-memory'];
  const f = results['ours-file'];
  const q = results['qemu-nbd-file'];
  const v = results['ours-vdi3'];
  const lines = [
    `NBD benchmark: ${SIZE_G} GiB devices, median of ${REPS} round-robin runs, fio ${RUNTIME}s per cell (nbd engine, 1 job), nbdcopy default (multi-conn), load ${os.loadavg().map((x) => x.toFixed(1)).join('/')}, ${new Date().toISOString()}`,
    '',
    `| test | unit | nbdkit memory | ours memory | ours/nbdkit | qemu-nbd file | ours file | ours/qemu-nbd | ours memory/qemu-nbd |${v ? ' ours VDI (3 nodes, 3 copies) |' : ''}`,
    `|---|---|---|---|---|---|---|---|---|${v ? '---|' : ''}`,
    ...keys.map(
      (key) =>
        `| ${key} | ${units[key]} | ${fmt(k[key])} | ${fmt(m[key])} | ${ratio(m[key], k[key])} | ${fmt(q[key])} | ${fmt(f[key])} | ${ratio(f[key], q[key])} | ${ratio(m[key], q[key])} |${v ? ` ${fmt(v[key])} |` : ''}`,
    ),
    ...(v ? ['', `The VDI column's nbdcopy moves ${VDI_MB} MiB (--vdi-size), not the devices' size.`] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (JSON_OUT !== undefined) {
    fs.writeFileSync(JSON_OUT, JSON.stringify({ runtime: RUNTIME, reps: REPS, size: SIZE, results, samples }, null, 2));
  }
  if (opt('--dir', undefined) === undefined) fs.rmSync(DIR, { recursive: true, force: true });
}

const onSignal = () => void stopAll().then(() => process.exit(130));
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
main().catch(async (err) => {
  process.stderr.write(`bench/nbd: ${err.message}\n`);
  await stopAll();
  process.exit(1);
});
