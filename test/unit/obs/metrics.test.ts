// /metrics serves Prometheus text that counts what was recorded.
import { describe, expect, it } from 'vitest';
import { createMetrics, serveMetrics } from '../../../src/obs/metrics.js';

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
      expect(text).toMatch(/sheepfold_requests_total\{proto="nbd",op="read",result="ok",component="test",node="n1"\} 1/);
      expect(text).toMatch(/sheepfold_bytes_total\{proto="nbd",dir="read",component="test",node="n1"\} 4096/);
      expect(text).toMatch(/sheepfold_request_duration_seconds_count\{proto="nbd",op="read",component="test",node="n1"\} 1/);
      expect((await fetch(`http://${address}/nope`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
