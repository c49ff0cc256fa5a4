import { type Cipheriv, createCipheriv } from 'node:crypto';

const ZEROS = Buffer.alloc(4096);

/**
 * A small seeded PRNG (mulberry32): the same seed gives the same dataset on every machine and
 * Node version, which Math.random cannot promise.
 */
export class Random {
  private state: number;
  /** A keyed stream (salted): AES-128-CTR's keystream read 32 bits at a time. */
  private keyed?: { cipher: Cipheriv; block: Buffer; at: number };

  /**
   * `salt` (16 bytes) replaces mulberry32's 32-bit state with a keystream keyed by it: a hidden
   * variant must not be found by trying every 32-bit seed against a few values that leaked
   * (2^32 seeds × the first draws is an hour of CPU), nor be the same in two assessments. AES in
   * counter mode is node's own (OpenSSL), so the stream is as fast and as reproducible.
   */
  constructor(seed: number, salt?: Buffer) {
    this.state = seed >>> 0;
    if (salt) {
      if (salt.length !== 16) throw new Error(`a dataset salt is 16 bytes, not ${salt.length}`);
      const iv = Buffer.alloc(16);
      iv.writeUInt32BE(this.state, 0);
      this.keyed = { cipher: createCipheriv('aes-128-ctr', salt, iv), block: Buffer.alloc(0), at: 0 };
    }
  }

  /** Uniform in [0, 1). */
  next(): number {
    const keyed = this.keyed;
    if (keyed) {
      if (keyed.at >= keyed.block.length) {
        keyed.block = keyed.cipher.update(ZEROS);
        keyed.at = 0;
      }
      const value = keyed.block.readUInt32LE(keyed.at);
      keyed.at += 4;
      return value / 4294967296;
    }
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Picks by weight: [[value, weight], …]. */
  weighted<T>(items: ReadonlyArray<readonly [T, number]>): T {
    const total = items.reduce((s, [, w]) => s + w, 0);
    let r = this.next() * total;
    for (const [v, w] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return items[items.length - 1]![0];
  }

  /** Log-normal-ish positive amount around `median`, rounded to cents. */
  amount(median: number, spread = 0.9): number {
    const u = Math.max(1e-9, this.next());
    const v = this.next();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return Math.round(median * Math.exp(spread * z) * 100) / 100;
  }
}

/** This module's file: part of the generator's fingerprint (prebuilt.ts). */
export const SOURCE_URL = import.meta.url;
