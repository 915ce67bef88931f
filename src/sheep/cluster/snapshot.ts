// Compaction snapshots of the applied cluster state travel as JSON (a `local` snapshot file, an etcd value):
// this codec keeps the state's Buffers, bigints, Maps and Sets intact across that, with tagged objects
// ({$b: hex}, {$n: decimal}, {$m: entries}, {$s: values}). Decoding validates the tags it meets.

export function encodeTagged(v: unknown): unknown {
  if (typeof v === 'bigint') return { $n: v.toString() };
  if (Buffer.isBuffer(v)) return { $b: v.toString('hex') };
  if (v instanceof Map) return { $m: [...v].map(([k, x]) => [encodeTagged(k), encodeTagged(x)]) };
  if (v instanceof Set) return { $s: [...v].map(encodeTagged) };
  if (Array.isArray(v)) return v.map(encodeTagged);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = encodeTagged(x);
    return out;
  }
  return v;
}

export function decodeTagged(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decodeTagged);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    const [k] = keys;
    const x = o[k!];
    if (k === '$n') {
      if (typeof x !== 'string' || !/^-?\d+$/.test(x)) throw new Error('snapshot: bad bigint');
      return BigInt(x);
    }
    if (k === '$b') {
      if (typeof x !== 'string' || !/^([0-9a-f]{2})*$/.test(x)) throw new Error('snapshot: bad buffer');
      return Buffer.from(x, 'hex');
    }
    if (k === '$m') {
      if (!Array.isArray(x)) throw new Error('snapshot: bad map');
      return new Map(
        x.map((e: unknown) => {
          if (!Array.isArray(e) || e.length !== 2) throw new Error('snapshot: bad map entry');
          return [decodeTagged(e[0]), decodeTagged(e[1])] as const;
        }),
      );
    }
    if (k === '$s') {
      if (!Array.isArray(x)) throw new Error('snapshot: bad set');
      return new Set(x.map(decodeTagged));
    }
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = decodeTagged(o[k]);
  return out;
}
