// /metrics serves Prometheus text that counts what was recorded.
import { describe, expect, it } from 'vitest';
import { createMetrics, serveMetrics } from '../../../src/obs/metrics.js';

/** Value of the sample `name` whose labels include `labels` (label order does not matter). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('metrics', () => {
  it('counts requests and serves them over HTTP in the text format', async () => {
    const m = createMetrics('test', { node: 'n1' });
    const done = m.time('nbd', 'read');
    done('ok');
    m.bytes.inc({ proto: 'nbd', dir: 'read' }, 4096);
    const { server, address } = await serveMetrics(m.registry, '127.0.0.1', 0);
    try {
      const text = await (await fetch(`http://${address}/metrics`)).text();
      expect(text).toMatch(/^# HELP sheepfold_requests_total/m);
      const l = { component: 'test', node: 'n1', proto: 'nbd' };
      expect(sample(text, 'sheepfold_requests_total', { ...l, op: 'read', result: 'ok' })).toBe(1);
      expect(sample(text, 'sheepfold_bytes_total', { ...l, dir: 'read' })).toBe(4096);
      expect(sample(text, 'sheepfold_request_duration_seconds_count', { ...l, op: 'read' })).toBe(1);
      expect(sample(text, 'sheepfold_requests_in_flight', l)).toBe(0);
      expect((await fetch(`http://${address}/nope`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
