// A small seeded PRNG (mulberry32) for the fuzzers: the same seed gives the same cases on every run,
// so a failure names a seed and a case number that reproduce it.

export class Prng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** uniform in [0, 2^32) */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** uniform integer in [0, n) */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 2 ** 32) * n);
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

/** Byte-level mutations of a valid input: flips, overwrites with edge values, cuts, splices, repeats. */
export function mutateBytes(rng: Prng, input: Buffer, maxOps = 4): Buffer {
  let b = Buffer.from(input);
  const ops = 1 + rng.int(maxOps);
  for (let k = 0; k < ops; k++) {
    const at = b.length === 0 ? 0 : rng.int(b.length);
    switch (rng.int(8)) {
      case 0: // bit flip
        if (b.length > 0) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 1: // random byte
        if (b.length > 0) b[at] = rng.int(256);
        break;
      case 2: {
        // a 32-bit word at a 4-byte boundary set to an edge value (lengths and counts live there in XDR)
        const w = at & ~3;
        if (w + 4 <= b.length) b.writeUInt32BE(rng.pick([0, 1, 3, 4, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffc, 1024, 65536, rng.u32()]), w);
        break;
      }
      case 3: // truncate
        b = b.subarray(0, at);
        break;
      case 4: // delete a run
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(16))]);
        break;
      case 5: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(16)), b.subarray(at)]);
        break;
      case 6: {
        // duplicate a slice
        const len = 1 + rng.int(Math.max(1, Math.min(64, b.length - at)));
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      }
      default: // splice in a slice from elsewhere in the input
        if (input.length > 0) {
          const from = rng.int(input.length);
          b = Buffer.concat([b.subarray(0, at), input.subarray(from, from + 1 + rng.int(32)), b.subarray(at)]);
        }
    }
  }
  return b;
}
