// `sheepfold sheep` as a process: the --json ready line, the store's unix socket and an extra --unix socket, one
// sheep per store directory, graceful SIGTERM (exit 0, pid file removed), and a restart that keeps the cluster.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as C from '../../src/proto/sheepdog/constants.js';
import { ephemeralPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, start, tempDir, waitForOutput, lacking } from '../helpers/proc.js';
import { SheepWire, okReply } from '../helpers/sheep-wire.js';

const built = !lacking([], { 'the built sheepfold CLI': SHEEPFOLD_BIN });

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe.skipIf(!built)('sheepfold sheep process', () => {
  it('prints a JSON ready line, serves TCP and unix sockets, refuses a second sheep on its store, stops on SIGTERM', async () => {
    const dir = tempDir('sheep-cli-');
    const store = path.join(dir, 'store');
    const extra = path.join(dir, 'extra.sock');
    const port = await ephemeralPort();
    const args = [SHEEPFOLD_BIN, 'sheep', '--store', store, '--port', String(port), '--unix', extra, '--zone', '5', '--json', '--log-level', 'warn'];
    const p = start(process.execPath, args);
    const m = await waitForOutput(p, /\{"event":"sheep_ready".*\}/);
    const ready = JSON.parse(m[0]) as { port: number; store: string; sock: string; pid: number };
    expect(ready).toMatchObject({ port, store, sock: path.join(store, 'sock'), pid: p.pid });
    for (const target of [{ port }, { path: ready.sock }, { path: extra }]) {
      const w = await SheepWire.connect(target);
      const nl = okReply(await w.request(C.SD_OP_GET_NODE_LIST, { dataLength: 800 }));
      expect(nl.data.readUInt32LE(68)).toBe(5); // zone of sd_node[0]
      w.close();
    }
    const w = await SheepWire.connect({ port });
    okReply(await w.makeFs({ copies: 1 }));
    okReply(await w.newVdi('kept', 1n << 20n));
    w.close();
    const second = start(process.execPath, [SHEEPFOLD_BIN, 'sheep', '--store', store, '--port', String(await ephemeralPort())]);
    expect(await second.exited).not.toBe(0);
    expect(second.output()).toMatch(/in use by pid/);
    p.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(fs.existsSync(path.join(store, 'sheep.pid'))).toBe(false);
    const again = start(process.execPath, args);
    await waitForOutput(again, /sheep_ready/);
    const w2 = await SheepWire.connect({ port });
    expect((okReply(await w2.vdiInfo('kept')).rsp.args as { vdiId: number }).vdiId).toBeGreaterThan(0);
    w2.close();
    again.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
