import { describe, expect, it } from 'vitest';
import { FailureWindow } from './failure-window.ts';

describe('FailureWindow', () => {
  it('refuses after `limit` failures until the window ends, with the seconds left', () => {
    const window = new FailureWindow(3, 60_000);
    for (let i = 0; i < 3; i++) window.record('a', 1_000 + i);
    expect(window.retryAfter('a', 2_000)).toBe(59);
    expect(window.retryAfter('b', 2_000)).toBe(0);
    expect(window.retryAfter('a', 61_000)).toBe(0);
    window.record('a', 61_000);
    expect(window.retryAfter('a', 61_001)).toBe(0);
  });

  it('remembers at most maxClients addresses (a spray from many addresses is bounded)', () => {
    const window = new FailureWindow(1, 60_000, 100);
    for (let i = 0; i < 10_000; i++) window.record(`10.0.${i >> 8}.${i & 255}`, 1_000);
    expect(window.size).toBe(100);
    expect(window.retryAfter('10.0.39.15', 1_001)).toBeGreaterThan(0); // the newest is kept
    expect(window.retryAfter('10.0.0.0', 1_001)).toBe(0); // the oldest was dropped
  });
});
