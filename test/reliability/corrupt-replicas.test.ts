// Corrupt replicas (issue 8, test 5), single node: object files of a VDI get a bit flip, a zeroed block, a
// truncation and a deletion behind the sheep's back. Reads through the target must never return bad bytes:
// a damaged block answers EIO (with one replica there is no good copy), undamaged blocks keep reading
// correctly, and the background scrub (`--scrub-interval`) finds every damaged object. Repair from a good
// replica needs a cluster (copies >= 2): see the report's `repaired` field and docs/guarantees.md.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NbdRequestError } from '../../src/nbd/client.js';
import { makeStampedBlock, classifyBlock } from '../../src/drill/stamp.js';
import { isDataOid, oidToIndex, parseOidHex } from '../../src/proto/sheepdog/oid.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { reportReliability } from '../helpers/reliability.js';
import { nbdIo, sheepWithVdis, vdiTarget, waitFor } from './harness.js';

const MiB = 1024 * 1024;
const OBJ = 4 * MiB;
const BS = 4096;
/** Blocks written per object (at the start of each 256 KiB stretch). */
const PER_OBJ = 16;

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

const blockOffset = (obj: number, k: number): number => obj * OBJ + k * 256 * 1024;

describe('corrupt replicas (one node)', () => {
  it('never serves damaged bytes, answers EIO, and the scrub finds every damaged object', async () => {
    const sheep = await sheepWithVdis([['c', '64M']], ['--scrub-interval', '1', '--log-level', 'info']);
    const t = await vdiTarget(sheep.addr, ['c=c']);
    const nbd = await nbdIo(t, 'c');
    for (let obj = 0; obj < 5; obj++) {
      for (let k = 0; k < PER_OBJ; k++) {
        const off = blockOffset(obj, k);
        await nbd.write(off, makeStampedBlock({ writer: 1, seq: obj * 100 + k, lba: off / BS }, BS));
      }
    }
    const objDir = path.join(sheep.dir, 'obj');
    const dataFiles = new Map<number, string>();
    for (const name of fs.readdirSync(objDir)) {
      const oid = parseOidHex(name);
      if (oid !== null && isDataOid(oid)) dataFiles.set(oidToIndex(oid), path.join(objDir, name));
    }
    expect([...dataFiles.keys()].sort()).toEqual([0, 1, 2, 3, 4]);
    const file = (i: number): string => dataFiles.get(i)!;

    // Damage: object 0 a bit flip in block k=1, object 1 a zeroed block k=2, object 2 truncated to 1 MiB
    // (blocks k>=4 gone), object 3 deleted; object 4 stays good.
    const fd0 = fs.openSync(file(0), 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd0, b, 0, 1, 256 * 1024 + 100);
    b[0] = b[0]! ^ 0x04;
    fs.writeSync(fd0, b, 0, 1, 256 * 1024 + 100);
    fs.closeSync(fd0);
    const fd1 = fs.openSync(file(1), 'r+');
    fs.writeSync(fd1, Buffer.alloc(BS), 0, BS, 2 * 256 * 1024);
    fs.closeSync(fd1);
    fs.truncateSync(file(2), MiB);
    fs.rmSync(file(3));
    const damaged = new Set([`0:1`, `1:2`, ...Array.from({ length: PER_OBJ - 4 }, (_, i) => `2:${i + 4}`)]);

    let served = 0;
    let eio = 0;
    let badBytes = 0;
    let otherErrors = 0;
    for (let obj = 0; obj < 5; obj++) {
      for (let k = 0; k < PER_OBJ; k++) {
        const off = blockOffset(obj, k);
        let got: Buffer | null = null;
        try {
          got = await nbd.read(off, BS);
        } catch (e) {
          if (e instanceof NbdRequestError && e.errno === 5) eio++;
          else otherErrors++;
        }
        if (!got) continue;
        const c = classifyBlock(got, off / BS);
        if (c.kind === 'stamp' && c.stamp.seq === obj * 100 + k) served++;
        else badBytes++;
        expect(damaged.has(`${obj}:${k}`), `damaged block ${obj}:${k} was served (${c.kind})`).toBe(false);
      }
    }
    // Object 3's file is gone: its blocks must fail, never read as zeros.
    expect(badBytes).toBe(0);
    expect(otherErrors).toBe(0);
    expect(eio).toBe(damaged.size + PER_OBJ);
    expect(served).toBe(5 * PER_OBJ - damaged.size - PER_OBJ);

    // The scrub runs every second; wait for one that saw all the damage.
    let scrub = { corrupt: 0, missing: 0 };
    await waitFor(() => {
      for (const line of sheep.proc.output().split('\n')) {
        if (!line.includes('"scrub_done"')) continue;
        const r = JSON.parse(line) as { corrupt: number; missing: number };
        if (r.corrupt + r.missing > scrub.corrupt + scrub.missing) scrub = r;
      }
      return scrub.corrupt >= 3 && scrub.missing >= 1;
    }, 'a scrub that finds the damaged objects');
    const log = sheep.proc.output();
    const detectedOnRead = (log.match(/"source":"read"[^\n]*"object_corrupt"|"object_corrupt"[^\n]*"source":"read"/g) ?? []).length;
    await nbd.close();
    reportReliability('corrupt-replicas', {
      nodes: 1,
      copies: 1,
      damaged_objects: 4,
      damaged_blocks_read: damaged.size + PER_OBJ,
      eio_answers: eio,
      bad_bytes_served: badBytes,
      detected_on_read: detectedOnRead,
      scrub_corrupt: scrub.corrupt,
      scrub_missing: scrub.missing,
      repaired: 0,
    });
    expect(scrub.corrupt).toBe(3);
    expect(scrub.missing).toBe(1);
  });
});
