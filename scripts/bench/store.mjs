#!/usr/bin/env node
// Object-store benchmark (one store, no network): writes of a given size at a given queue depth into 4 MiB
// objects, for the plain store, the journal store with writes of 256 KiB and up going straight to the object
// file (journal) and the journal store with every write through its log (journal-log, the default), on the
// same disk, alternating rounds, medians. It answers whether large writes should bypass the log: compare
// journal and journal-log for 1 MiB writes.
//   node scripts/bench/store.mjs [--dir /tmp/sf-store-bench] [--seconds 5] [--rounds 3] [--json]
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { JournalStore } from '../../dist/sheep/store/journal.js';
import { PlainStore } from '../../dist/sheep/store/plain.js';
import { componentLogger } from '../../dist/obs/log.js';

const { values: o } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp/sf-store-bench' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const OBJ = 4 << 20;
const OBJECTS = 64;
const V = { epoch: 1, gen: 1, current: 1 };
const KINDS = ['plain', 'journal', 'journal-log'];
const log = componentLogger('store-bench').child({}, { level: 'silent' });
const cases = [
  { name: '4k-qd1', bs: 4096, qd: 1 },
  { name: '4k-qd16', bs: 4096, qd: 16 },
  { name: '1m-qd16', bs: 1 << 20, qd: 16 },
];

async function run(kind, c, seconds) {
  const dir = path.join(o.dir, kind);
  fs.rmSync(dir, { recursive: true, force: true });
  const s = kind === 'plain' ? new PlainStore(dir, { log }) : new JournalStore(dir, { log, directWriteBytes: kind === 'journal-log' ? 0 : 256 * 1024 });
  await s.open();
  for (let i = 0; i < OBJECTS; i++) await s.create(BigInt(i + 1), OBJ, Buffer.alloc(0), 0, V);
  const data = Buffer.alloc(c.bs, 0x5a);
  let ops = 0;
  let seed = 12345;
  const end = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: c.qd }, async () => {
      while (Date.now() < end) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        const oid = BigInt((seed % OBJECTS) + 1);
        const off = ((seed >> 6) % (OBJ / c.bs)) * c.bs;
        await s.write(oid, data, off, V);
        ops++;
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { iops: ops / secs, mibs: (ops * c.bs) / secs / 1048576 };
}

const results = {};
for (let r = 0; r < Number(o.rounds); r++) {
  for (const c of cases) {
    for (const kind of KINDS) {
      const x = await run(kind, c, Number(o.seconds));
      ((results[c.name] ??= {})[kind] ??= []).push(x);
      if (!o.json) console.error(`round ${r + 1} ${c.name} ${kind}: ${x.iops.toFixed(0)} IOPS ${x.mibs.toFixed(1)} MiB/s`);
    }
  }
}
const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const table = Object.fromEntries(
  Object.entries(results).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([kind, xs]) => [kind, { iops: Math.round(med(xs.map((x) => x.iops))), mib_s: Number(med(xs.map((x) => x.mibs)).toFixed(1)) }]))]),
);
const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
if (o.json) console.log(JSON.stringify({ median: table, load }));
else {
  console.log(`| case | ${KINDS.map((k) => `${k} IOPS | MiB/s`).join(' | ')} | journal/plain |`);
  console.log(`|---|${KINDS.map(() => '---|---|').join('')}---|`);
  for (const [k, v] of Object.entries(table)) console.log(`| ${k} | ${KINDS.map((kind) => `${v[kind].iops} | ${v[kind].mib_s}`).join(' | ')} | ${(v.journal.iops / v.plain.iops).toFixed(2)}× |`);
  console.log(`load average after: ${load}`);
}
fs.rmSync(o.dir, { recursive: true, force: true });
