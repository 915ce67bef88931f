// Real libiscsi tools and qemu against the Sheepfold iSCSI target (the built CLI): qemu-img copies 256 MiB of
// random data in and back out byte-identical, iscsi-ls lists targets and LUN sizes, iscsi-inq shows the VPD
// pages with the device identity; CHAP (one-way and mutual) admits the right secret and refuses a wrong one;
// the initiator ACL refuses an IQN it does not list.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ephemeralPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, start, tempDir, waitForOutput, lacking } from '../helpers/proc.js';

const PREFIX = 'iqn.2026-11.org.sheepfold:';
const ALLOWED = 'iqn.2026-11.test:allowed';

async function startTarget(dir: string, lines: string[], exportsArgs: string[]): Promise<number> {
  const port = await ephemeralPort();
  const cfg = path.join(dir, `t${port}.toml`);
  fs.writeFileSync(cfg, ['[nbd]', 'enabled = false', '[iscsi]', 'enabled = true', `listen = "127.0.0.1:${port}"`, ...lines, ''].join('\n'));
  const p = start('node', [SHEEPFOLD_BIN, 'target', '--config', cfg, '--log-level', 'warn', ...exportsArgs.flatMap((e) => ['--export', e])]);
  await waitForOutput(p, /target ready/);
  return port;
}

const haveAll = !lacking(['iscsi-ls', 'iscsi-inq', 'qemu-img']);

describe.skipIf(!haveAll)('iSCSI target with real tools', () => {
  let dir = '';
  let port = 0;
  beforeAll(async () => {
    dir = tempDir('sheepfold-iscsi-tools-');
    port = await startTarget(dir, [], ['big=mem:256M', 'small=mem:16M']);
  });
  afterAll(async () => {
    await killAll();
    cleanupTempDirs();
  });

  it('iscsi-ls -s lists both targets with their LUN 0 sizes', async () => {
    const r = await run('iscsi-ls', ['-s', `iscsi://127.0.0.1:${port}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Target:${PREFIX}big Portal:127.0.0.1:${port},1`);
    expect(r.stdout).toContain(`Target:${PREFIX}small Portal:127.0.0.1:${port},1`);
    expect(r.stdout).toMatch(/Lun:0\s+Type:DIRECT_ACCESS \(Size:15M\)/);
  });

  it('iscsi-inq shows standard data and the VPD pages', async () => {
    const url = `iscsi://127.0.0.1:${port}/${PREFIX}small/0`;
    const std = await run('iscsi-inq', [url]);
    expect(std.stdout).toContain('Vendor:SHEEPFLD');
    expect(std.stdout).toContain('SBC-3');
    // iscsi-inq takes the page code in decimal.
    const pages = await run('iscsi-inq', ['-e', '1', '-c', '0', url]);
    for (const p of ['0x80', '0x83', '0xb0', '0xb1', '0xb2']) expect(pages.stdout.toLowerCase()).toContain(`page:${p}`);
    const serial = await run('iscsi-inq', ['-e', '1', '-c', '128', url]);
    expect(serial.stdout).toMatch(/Unit Serial Number:\[[0-9a-f]{16}\]/);
    const ids = await run('iscsi-inq', ['-e', '1', '-c', '131', url]);
    expect(ids.stdout).toContain('Designator Type:(3) NAA');
    expect(ids.stdout).toContain(`Designator:[${PREFIX}small]`);
    const bl = await run('iscsi-inq', ['-e', '1', '-c', '176', url]);
    expect(bl.stdout).toContain('maximum transfer length:65536');
    const lbp = await run('iscsi-inq', ['-e', '1', '-c', '178', url]);
    expect(lbp.stdout).toContain('lbpu:1');
  });

  it('qemu-img copies 256 MiB of random data in and back out identically', async () => {
    const src = path.join(dir, 'rand.img');
    const back = path.join(dir, 'back.img');
    const chunk = crypto.randomBytes(1024 * 1024);
    const fd = fs.openSync(src, 'w');
    for (let i = 0; i < 256; i++) {
      chunk.writeUInt32LE(i, 0);
      fs.writeSync(fd, chunk);
    }
    fs.closeSync(fd);
    const url = `iscsi://127.0.0.1:${port}/${PREFIX}big/0`;
    const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, url], { timeoutMs: 300_000 });
    expect(w.stderr).toBe('');
    expect(w.code).toBe(0);
    const r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', url, back], { timeoutMs: 300_000 });
    expect(r.code).toBe(0);
    const hash = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    expect(fs.statSync(back).size).toBe(256 * 1024 * 1024);
    expect(hash(back)).toBe(hash(src));
  });

  it('CHAP: the right secret logs in, a wrong one is refused; mutual CHAP checks the target too', async () => {
    const p = await startTarget(
      dir,
      ['chap-user = "alice"', 'chap-secret = "alicesecret12"', 'chap-mutual-user = "tgt"', 'chap-mutual-secret = "targetsecret1"'],
      ['sec=mem:8M'],
    );
    const url = (cred: string, q = ''): string => `iscsi://${cred}@127.0.0.1:${p}/${PREFIX}sec/0${q}`;
    expect((await run('iscsi-inq', [url('alice%alicesecret12')])).code).toBe(0);
    expect((await run('iscsi-inq', [url('alice%wrongsecret99')])).code).not.toBe(0);
    expect((await run('iscsi-inq', [`iscsi://127.0.0.1:${p}/${PREFIX}sec/0`])).code).not.toBe(0);
    const mutualOk = await run('iscsi-inq', [url('alice%alicesecret12', '?target_user=tgt&target_password=targetsecret1')]);
    expect(mutualOk.code).toBe(0);
    const mutualBad = await run('iscsi-inq', [url('alice%alicesecret12', '?target_user=tgt&target_password=notthesecret')]);
    expect(mutualBad.code).not.toBe(0);
  });

  it('ACL: an initiator not in the list is refused, a listed one is admitted', async () => {
    const p = await startTarget(dir, [`target-acl = "acl=${ALLOWED}"`], ['acl=mem:8M']);
    const url = `iscsi://127.0.0.1:${p}/${PREFIX}acl/0`;
    const refused = await run('iscsi-inq', [url]);
    expect(refused.code).not.toBe(0);
    const ok = await run('iscsi-inq', ['-i', ALLOWED, url]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('Vendor:SHEEPFLD');
  });

  it('header digests (CRC32C) work end to end', async () => {
    const url = `iscsi://127.0.0.1:${port}/${PREFIX}small/0?header_digest=crc32c`;
    const r = await run('iscsi-inq', [url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Vendor:SHEEPFLD');
  });
});
