// Prometheus /metrics on a sheep and on a target: the text parses as the exposition format and counts exactly
// the requests this test made (qemu-io writes through NBD; dog's READ_VDIS requests to the sheep).
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { ephemeralPort, portInRange } from '../helpers/ports.js';
import { DOG_BIN, SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, start, tempDir, waitForOutput } from '../helpers/proc.js';

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parse the Prometheus text exposition format strictly: every line is a comment, blank, or a sample. */
function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

async function scrape(addr: string): Promise<Sample[]> {
  const res = await fetch(`http://${addr}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parseProm(await res.text());
}

describe('/metrics', () => {
  it('sheep and target expose Prometheus text that counts our requests', async () => {
    const dir = tempDir();
    const sheepPort = await portInRange(7000, 9999);
    const sheepMetrics = `127.0.0.1:${await ephemeralPort()}`;
    const sheep = start(process.execPath, [SHEEPFOLD_BIN, 'sheep', '--store', path.join(dir, 's'), '--port', String(sheepPort), '--metrics', sheepMetrics, '--json', '--log-level', 'warn']);
    await waitForOutput(sheep, /sheep_ready/);
    const dog = (args: string[]) => run(process.execPath, [DOG_BIN, ...args, '-p', String(sheepPort)]);
    expect((await dog(['cluster', 'format', '-c', '1'])).code).toBe(0);
    expect((await dog(['vdi', 'create', 'm', '64M'])).code).toBe(0);

    const before = value(await scrape(sheepMetrics), 'sheepfold_requests_total', { op: 'READ_VDIS' });
    for (let i = 0; i < 3; i++) expect((await dog(['vdi', 'list'])).code).toBe(0);
    const sheepSamples = await scrape(sheepMetrics);
    expect(value(sheepSamples, 'sheepfold_requests_total', { op: 'READ_VDIS', component: 'sheep' }) - before).toBe(3);
    expect(value(sheepSamples, 'sheepfold_request_duration_seconds_count', { op: 'NEW_VDI' })).toBe(1);
    expect(value(sheepSamples, 'sheepfold_connections', { proto: 'sheepdog' })).toBeGreaterThanOrEqual(0);

    const nbdPort = await ephemeralPort();
    const targetMetrics = `127.0.0.1:${await ephemeralPort()}`;
    const target = start(process.execPath, [
      SHEEPFOLD_BIN, 'target', '--sheep', `127.0.0.1:${sheepPort}`, '--export', 'm=m', '--export', 'scratch=mem:16M',
      '--nbd', `127.0.0.1:${nbdPort}`, '--metrics', targetMetrics, '--json', '--log-level', 'warn',
    ]);
    await waitForOutput(target, /"ready":true/);
    const io = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 4k', '-c', 'write -P 0x22 64k 4k', '-c', 'write -P 0x33 1M 64k', `nbd://127.0.0.1:${nbdPort}/m`]);
    expect(io.code).toBe(0);
    const t = await scrape(targetMetrics);
    expect(value(t, 'sheepfold_requests_total', { component: 'target', proto: 'block', op: 'write', result: 'ok' })).toBe(3);
    expect(value(t, 'sheepfold_bytes_total', { proto: 'block', dir: 'write' })).toBe(4096 + 4096 + 65536);
    expect(value(t, 'sheepfold_request_duration_seconds_count', { proto: 'block', op: 'write' })).toBe(3);
    // The VDI's writes reached the sheep as object requests.
    const s2 = await scrape(sheepMetrics);
    expect(value(s2, 'sheepfold_requests_total', { op: 'CREATE_AND_WRITE_OBJ' }) + value(s2, 'sheepfold_requests_total', { op: 'WRITE_OBJ' })).toBeGreaterThanOrEqual(3);
  });
});
