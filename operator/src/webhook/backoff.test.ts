import { describe, expect, it } from 'vitest';
import { backoffMs } from './backoff.ts';

describe('webhook backoff', () => {
  const opts = { baseMs: 1000, capMs: 10_000 };
  it('doubles from the base, between half and all of it (equal jitter)', () => {
    expect(backoffMs(1, opts, () => 0)).toBe(500);
    expect(backoffMs(1, opts, () => 1)).toBe(1000);
    expect(backoffMs(2, opts, () => 0)).toBe(1000);
    expect(backoffMs(3, opts, () => 1)).toBe(4000);
    expect(backoffMs(4, opts, () => 0.5)).toBe(6000);
  });
  it('is capped', () => {
    expect(backoffMs(5, opts, () => 1)).toBe(10_000);
    expect(backoffMs(40, opts, () => 1)).toBe(10_000);
    expect(backoffMs(40, opts, () => 0)).toBe(5000);
  });
  it('varies with the random draw (jitter)', () => {
    const seen = new Set([0.1, 0.4, 0.9].map((r) => backoffMs(3, opts, () => r)));
    expect(seen.size).toBe(3);
  });
});
