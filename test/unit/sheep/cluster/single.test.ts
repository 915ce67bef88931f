// The `single` cluster driver keeps the driver contract: join delivered first, broadcasts delivered one at a
// time in send order (each handler awaited), broadcast resolves after local delivery, leave delivered last.
import { describe, expect, it } from 'vitest';
import type { ClusterEvent } from '../../../../src/sheep/cluster/local.js';
import { SingleClusterDriver } from '../../../../src/sheep/cluster/single.js';

describe('SingleClusterDriver', () => {
  it('delivers events in order and awaits each handler', async () => {
    const d = new SingleClusterDriver();
    const seen: string[] = [];
    let busy = false;
    d.onEvent(async (e: ClusterEvent) => {
      expect(busy).toBe(false);
      busy = true;
      await new Promise((r) => setImmediate(r));
      seen.push(e.type === 'message' ? `m${String(e.payload)}` : e.type);
      busy = false;
    });
    await expect(d.broadcast(0)).rejects.toThrow(/member/);
    const me = await d.join('127.0.0.1:7000', { zone: 1 });
    expect(d.members()).toEqual([me]);
    const seqs = await Promise.all([1, 2, 3].map((n) => d.broadcast(n)));
    expect(seqs).toEqual([1, 2, 3]);
    await d.leave();
    expect(seen).toEqual(['join', 'm1', 'm2', 'm3', 'leave']);
    expect(d.members()).toEqual([]);
    await d.close();
  });
});
