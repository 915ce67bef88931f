// Cluster benchmark: 4 MiB-object write and read throughput and latency through one gateway sheep of a local
// 3-node cluster (`--cluster local:DIR`, distinct zones), for copies 1, 2 and 3, next to this machine's raw
// fdatasync'd disk write speed measured in the same run and on the same file system. Writes are
// CREATE_AND_WRITE_OBJ of whole objects (each acknowledged only when every replica fsync'd it); reads are
// READ_OBJ of whole objects. Latency at queue depth 1, throughput at --qd (default 8).
// Usage: scripts/bench/cluster [--objects N] [--qd N] [--dir DIR] [--json FILE]. Run after `npm run build`.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { URL } from 'node:url';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const BIN = path.join(ROOT, 'dist', 'cli', 'sheepfold.js');
const DOG = path.join(ROOT, 'dist', 'cli', 'dog.js');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const OBJECTS = Number(opt('--objects', '32'));
const QD = Number(opt('--qd', '8'));
const JSON_OUT = opt('--json', undefined);
const DIR = opt('--dir', undefined) ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sheepfold-bench-cluster-'));
const OBJ = 4 * 1024 * 1024;
const procs = [];

const { SheepClient } = await import(path.join(ROOT, 'dist', 'client', 'index.js'));
const { vidToDataOid } = await import(path.join(ROOT, 'dist', 'proto', 'sheepdog', 'index.js'));

/** A free port in 7000–9999 (tgtd's reach; also keeps the bench away from ephemeral ports). */
function freePort() {
  return new Promise((resolve) => {
    const port = 7000 + Math.floor(Math.random() * 3000);
    const s = net.createServer();
    s.once('error', () => resolve(freePort()));
    s.listen({ port, host: '127.0.0.1' }, () => s.close(() => resolve(port)));
  });
}

function waitOutput(p, re) {
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d) => {
      out += d.toString();
      if (re.test(out)) resolve();
    };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    p.once('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
  });
}

function dog(argv, port) {
  const r = spawnSync(process.execPath, [DOG, ...argv, '-p', String(port)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dog ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (f) => s[Math.min(s.length - 1, Math.floor(f * s.length))];
  return { avg: s.reduce((a, b) => a + b, 0) / s.length, p50: q(0.5), p99: q(0.99) };
}

/** Raw disk: OBJECTS × 4 MiB, each pwrite followed by fdatasync, in the bench dir. */
function rawDisk() {
  const file = path.join(DIR, 'raw.bin');
  const fd = fs.openSync(file, 'w');
  const buf = crypto.randomBytes(OBJ);
  const lat = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < OBJECTS; i++) {
    const t = process.hrtime.bigint();
    fs.writeSync(fd, buf, 0, OBJ, i * OBJ);
    fs.fdatasyncSync(fd);
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.closeSync(fd);
  fs.rmSync(file);
  return { mbps: (OBJECTS * OBJ) / 1e6 / secs, lat: stats(lat) };
}

async function timed(n, qd, fn) {
  const lat = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: qd }, async () => {
      while (next < n) {
        const i = next++;
        const t = process.hrtime.bigint();
        await fn(i);
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { mbps: (n * OBJ) / 1e6 / secs, lat: stats(lat) };
}

async function main() {
  const clusterDir = path.join(DIR, 'cluster');
  const ports = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    ports.push(port);
    const p = spawn(process.execPath, [BIN, 'sheep', '--store', path.join(DIR, `n${i}`), '--port', String(port), '--cluster', `local:${clusterDir}`, '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(p);
    await waitOutput(p, /sheep ready/);
  }
  dog(['cluster', 'format', '-c', '3'], ports[0]);
  const raw = rawDisk();
  const client = new SheepClient({ gateways: `127.0.0.1:${ports[0]}`, poolSize: 4 });
  const data = crypto.randomBytes(OBJ);
  const rows = [];
  for (const copies of [1, 2, 3]) {
    const name = `bench${copies}`;
    dog(['vdi', 'create', '-c', String(copies), name, `${OBJECTS * 2 * 4}M`], ports[0]);
    const { vid } = await client.getVdiInfo(name);
    const oid = (i) => vidToDataOid(vid, i);
    const wLat = await timed(OBJECTS, 1, (i) => client.createAndWriteObj(oid(i), data, { copies }));
    const wThr = await timed(OBJECTS, QD, (i) => client.createAndWriteObj(oid(OBJECTS + i), data, { copies }));
    const rLat = await timed(OBJECTS, 1, (i) => client.readObj(oid(i), OBJ, { copies }));
    const rThr = await timed(OBJECTS, QD, (i) => client.readObj(oid(OBJECTS + i), OBJ, { copies }));
    rows.push({ copies, write: { qd1: wLat, qdN: wThr }, read: { qd1: rLat, qdN: rThr } });
  }
  client.close();
  const f = (x) => x.toFixed(1);
  const lines = [];
  lines.push(`Sheepfold cluster bench: 3 local nodes, gateway 127.0.0.1:${ports[0]}, ${OBJECTS} × 4 MiB objects, QD ${QD} for throughput, ${os.cpus().length} CPUs, dir ${DIR}`);
  lines.push('');
  lines.push('| what | write MB/s (QD1) | write MB/s (QD' + QD + ') | write lat avg / p50 / p99 ms (QD1) | read MB/s (QD1) | read MB/s (QD' + QD + ') | read lat avg / p50 / p99 ms (QD1) |');
  lines.push('|---|---|---|---|---|---|---|');
  lines.push(`| raw disk, 4 MiB pwrite + fdatasync | ${f(raw.mbps)} | – | ${f(raw.lat.avg)} / ${f(raw.lat.p50)} / ${f(raw.lat.p99)} | – | – | – |`);
  for (const r of rows) {
    lines.push(
      `| copies ${r.copies} | ${f(r.write.qd1.mbps)} | ${f(r.write.qdN.mbps)} | ${f(r.write.qd1.lat.avg)} / ${f(r.write.qd1.lat.p50)} / ${f(r.write.qd1.lat.p99)} | ` +
        `${f(r.read.qd1.mbps)} | ${f(r.read.qdN.mbps)} | ${f(r.read.qd1.lat.avg)} / ${f(r.read.qd1.lat.p50)} / ${f(r.read.qd1.lat.p99)} |`,
    );
  }
  console.log(lines.join('\n'));
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify({ objects: OBJECTS, qd: QD, raw, rows }, null, 2));
}

try {
  await main();
} finally {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  if (opt('--dir', undefined) === undefined) fs.rmSync(DIR, { recursive: true, force: true });
}
