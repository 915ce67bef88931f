// `dog node list|info` (dog/node.c formats): the member list with vnodes and zones, and per-node store usage
// from STAT_SHEEP plus the total virtual size of the working VDIs.
import type { DogContext } from './context.js';
import { DogError, EXIT_SYSFAIL } from './context.js';
import { addrToStr, rpad, lpad, strnumber } from './format.js';
import { listVdis } from './vdis.js';

export async function nodeList(ctx: DogContext): Promise<void> {
  const { nodes } = await ctx.client.getNodeList();
  const json = nodes.map((n, i) => ({ id: i, addr: addrToStr(n.nid), vnodes: n.nrVnodes, zone: n.zone, space: n.space }));
  ctx.output(json, () => {
    let s = ctx.raw ? '' : '  Id   Host:Port         V-Nodes       Zone\n';
    nodes.forEach((n, i) => {
      s += ctx.raw
        ? `${i} ${addrToStr(n.nid)} ${n.nrVnodes} ${n.zone >>> 0}\n`
        : `${rpad(i, 4)}   ${lpad(addrToStr(n.nid), 20)}\t${rpad(n.nrVnodes, 2)}${rpad(n.zone >>> 0, 11)}\n`;
    });
    return s;
  });
}

const ratio = (used: bigint, size: bigint): number => (size === 0n ? 0 : Math.floor((Number(used) / Number(size)) * 100));

export async function nodeInfo(ctx: DogContext): Promise<void> {
  const { nodes } = await ctx.client.getNodeList();
  const rows: { id: number; addr: string; size: bigint; used: bigint; avail: bigint; usePercent: number }[] = [];
  for (const n of nodes) {
    try {
      const st = await ctx.client.forNode(n.nid).statSheep();
      const used = st.storeSize - st.storeFree;
      rows.push({ id: rows.length, addr: addrToStr(n.nid), size: st.storeSize, used, avail: st.storeFree, usePercent: ratio(used, st.storeSize) });
    } catch {
      // dog skips nodes that do not answer
    }
  }
  if (rows.length === 0) throw new DogError('Cannot get information from any nodes', EXIT_SYSFAIL);
  const total = rows.reduce((a, r) => ({ size: a.size + r.size, avail: a.avail + r.avail }), { size: 0n, avail: 0n });
  const vdis = await listVdis(ctx.client, false);
  const vdiSize = vdis.filter((v) => v.header.snapCtime === 0n).reduce((a, v) => a + v.header.vdiSize, 0n);
  const totalUsed = total.size - total.avail;
  ctx.output({ nodes: rows, total: { size: total.size, used: totalUsed, avail: total.avail, usePercent: ratio(totalUsed, total.size) }, totalVdiSize: vdiSize }, () => {
    const r = ctx.raw;
    let s = r ? '' : 'Id\tSize\tUsed\tAvail\tUse%\n';
    for (const x of rows) {
      s += r
        ? `${x.id} ${strnumber(x.size, r)} ${strnumber(x.used, r)} ${strnumber(x.avail, r)} ${x.usePercent}%\n`
        : `${rpad(x.id, 2)}\t${strnumber(x.size)}\t${strnumber(x.used)}\t${strnumber(x.avail)}\t${rpad(x.usePercent, 3)}%\n`;
    }
    const pct = ratio(totalUsed, total.size);
    s += r
      ? `Total ${strnumber(total.size, r)} ${strnumber(totalUsed, r)} ${strnumber(total.avail, r)} ${pct}% ${strnumber(vdiSize, r)}\n`
      : `Total\t${strnumber(total.size)}\t${strnumber(totalUsed)}\t${strnumber(total.avail)}\t${rpad(pct, 3)}%\n\nTotal virtual image size\t${strnumber(vdiSize)}\n`;
    return s;
  });
}
