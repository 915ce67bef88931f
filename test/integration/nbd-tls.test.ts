// NBD STARTTLS with a self-signed certificate made at test time by openssl: `--tls require` refuses plain
// clients (NBD_REP_ERR_TLS_REQD, nbdinfo fails) and serves TLS clients (nbdinfo, qemu-io with x509 creds);
// `--tls on` serves both.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { cleanupTempDirs, killAll, run, tempDir, lacking } from '../helpers/proc.js';
import { NbdClient } from '../../src/nbd/client.js';
import * as C from '../../src/proto/nbd/constants.js';
import { encodeInfoRequest } from '../../src/proto/nbd/messages.js';
import { startTarget, type RunningTarget } from './nbd-harness.js';

const peers = !lacking(['openssl', 'nbdinfo', 'qemu-io']);

describe.skipIf(!peers)('NBD TLS', () => {
  let dir: string;
  let tlsArgs: string[];

  beforeAll(async () => {
    dir = tempDir('sheepfold-tls-');
    const r = await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    expect(r.code, r.stderr).toBe(0);
    // libnbd and qemu look for the CA as ca-cert.pem in the credentials directory.
    fs.copyFileSync(path.join(dir, 'cert.pem'), path.join(dir, 'ca-cert.pem'));
    tlsArgs = ['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')];
  });

  afterAll(async () => {
    await killAll();
    cleanupTempDirs();
  });

  const tlsUri = (t: RunningTarget, name: string): string =>
    `nbds://${t.host}:${t.port}/${name}?tls-certificates=${dir}`;

  it('require: plain clients get NBD_REP_ERR_TLS_REQD; TLS clients are served', async () => {
    const t = await startTarget(['--export', 'a=mem:16M', '--tls', 'require', ...tlsArgs]);
    // Byte-level: every option but STARTTLS/ABORT is refused with TLS_REQD.
    const sock = net.connect({ host: t.host, port: t.port });
    const c = new NbdClient(sock);
    await c.greet();
    expect((await c.option(C.NBD_OPT_LIST, Buffer.alloc(0))).final).toBe(C.NBD_REP_ERR_TLS_REQD);
    const go = await c.option(C.NBD_OPT_GO, encodeInfoRequest({ name: 'a', requests: [] }));
    expect(go.final).toBe(C.NBD_REP_ERR_TLS_REQD);
    expect(go.replies).toEqual([]);
    expect((await c.option(C.NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0))).final).toBe(C.NBD_REP_ERR_TLS_REQD);
    sock.destroy();

    const plain = await run('nbdinfo', [t.uri('a')]);
    expect(plain.code).not.toBe(0);
    expect(plain.stdout).not.toMatch(/export-size/);

    const secure = await run('nbdinfo', ['--json', tlsUri(t, 'a')]);
    expect(secure.code, secure.stderr).toBe(0);
    const info = JSON.parse(secure.stdout) as { TLS: boolean; exports: { 'export-size': number }[] };
    expect(info.TLS).toBe(true);
    expect(info.exports[0]?.['export-size']).toBe(16 * 1024 * 1024);

    const io = await run('qemu-io', [
      '--object', `tls-creds-x509,id=tls0,dir=${dir},endpoint=client`,
      '--image-opts', `driver=nbd,host=${t.host},port=${t.port},export=a,tls-creds=tls0`,
      '-c', 'write -P 0x7e 1M 2M', '-c', 'read -P 0x7e 1M 2M', '-c', 'read -P 0 0 1M',
    ]);
    expect(io.code, io.stdout + io.stderr).toBe(0);
    expect(io.stdout).not.toMatch(/verification failed/);
    t.proc.kill('SIGTERM');
    expect(await t.proc.exited).toBe(0);
  });

  it('on: plain and TLS clients are both served', async () => {
    const t = await startTarget(['--export', 'a=mem:16M', '--tls', 'on', ...tlsArgs]);
    const plain = await run('nbdinfo', ['--json', t.uri('a')]);
    expect(plain.code, plain.stderr).toBe(0);
    expect((JSON.parse(plain.stdout) as { TLS: boolean }).TLS).toBe(false);
    const secure = await run('nbdinfo', ['--json', tlsUri(t, 'a')]);
    expect(secure.code, secure.stderr).toBe(0);
    expect((JSON.parse(secure.stdout) as { TLS: boolean }).TLS).toBe(true);
  });

  it('off: STARTTLS is refused by policy and the TLS-only client gives up', async () => {
    const t = await startTarget(['--export', 'a=mem:16M']);
    const secure = await run('nbdinfo', [tlsUri(t, 'a')]);
    expect(secure.code).not.toBe(0);
  });
});
