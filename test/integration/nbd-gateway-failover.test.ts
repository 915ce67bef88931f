// Gateway failover under load (issue 4): a 3-node cluster, a target whose VDI export goes through node 0;
// node 0 is SIGKILLed while nbdcopy writes 64 MiB. The client fails over to the next gateway inside the target,
// the copy completes, and every byte reads back through NBD and through dog on another node.
import { afterAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startLocalCluster } from '../helpers/cluster.js';
import { cleanupTempDirs, killAll, run, start, tempDir } from '../helpers/proc.js';
import { startTarget } from './nbd-harness.js';

const MiB = 2 ** 20;

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('NBD export across a gateway SIGKILL', () => {
  it('nbdcopy completes and verifies when the target’s sheep dies mid-copy', async () => {
    const cluster = await startLocalCluster(3);
    try {
      expect((await cluster.dog(['cluster', 'format', '-c', '3'])).code).toBe(0);
      await cluster.waitSettled(3);
      expect((await cluster.dog(['vdi', 'create', 'gw', '64M'])).code).toBe(0);
      const gateways = cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
      const t = await startTarget(['--sheep', gateways, '--export', 'gw=gw']);
      const dir = tempDir();
      const src = path.join(dir, 'src.bin');
      const data = crypto.randomBytes(64 * MiB);
      fs.writeFileSync(src, data);
      // A single connection and small requests keep the copy running long enough to be cut mid-way.
      const copy = start('nbdcopy', ['--connections=1', '--request-size=262144', '--requests=4', src, t.uri('gw')]);
      // Kill node 0 once the copy has started writing.
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const used = await cluster.dogJson<Array<{ name: string; used?: number | string }>>(['vdi', 'list']).catch(() => []);
        const u = Number(used.find((v) => v.name === 'gw')?.used ?? 0);
        if (u > 0 || copy.child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const midCopy = copy.child.exitCode === null;
      await cluster.killNode(0);
      expect(await copy.exited).toBe(0);
      expect(t.proc.output()).toMatch(/gateway_failover|reconnect/);
      const back = path.join(dir, 'back.bin');
      const r = await run('nbdcopy', [t.uri('gw'), back], { timeoutMs: 240_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readFileSync(back).equals(data)).toBe(true);
      const viaDog = await cluster.dogBinary(['vdi', 'read', 'gw'], { node: 2 });
      expect(viaDog.code).toBe(0);
      expect(viaDog.stdout.equals(data)).toBe(true);
      console.log(`nbd gateway failover: node 0 killed ${midCopy ? 'mid-copy' : 'after the copy finished'}`);
      expect(midCopy).toBe(true);
    } finally {
      await cluster.stopAll();
    }
  });
});
