// A small seeded random number generator (xorshift128+), for fuzzers and simulated faults that must replay
// exactly from a printed seed. Not for anything secret.
export class Rng {
  private s0: bigint;
  private s1: bigint;
  constructor(seed: number) {
    this.s0 = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + 1n);
    this.s1 = BigInt.asUintN(64, BigInt(seed) ^ 0xd1b54a32d192ed03n);
    for (let i = 0; i < 8; i++) this.next();
  }
  /** Next 32 random bits. */
  next(): number {
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x ^= BigInt.asUintN(64, x << 23n);
    x ^= x >> 17n;
    x ^= y ^ (y >> 26n);
    this.s1 = x;
    return Number(BigInt.asUintN(64, this.s0 + this.s1) >> 32n);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}
