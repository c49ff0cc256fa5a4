/** Unit tests for rate-limit.ts: the token bucket. */
import { describe, expect, it } from 'vitest';
import { takeToken } from './rate-limit.ts';

describe('takeToken (token bucket)', () => {
  it('allows a burst of `limit`, then refuses with Retry-After until a token refills', () => {
    let b: ReturnType<typeof takeToken>['bucket'] | undefined;
    for (let i = 0; i < 60; i++) {
      const d = takeToken(b, 0, 60);
      expect(d.allowed).toBe(true);
      expect(d.remaining).toBe(59 - i);
      b = d.bucket;
    }
    const refused = takeToken(b, 0, 60);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfter: 1, reset: 60 });
    expect(takeToken(b, 400, 60)).toMatchObject({ allowed: false, retryAfter: 1 });
    expect(takeToken(b, 1000, 60)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('Retry-After is whole seconds, at least 1', () => {
    const empty = { tokens: 0, at: 0 };
    expect(takeToken(empty, 0, 3).retryAfter).toBe(20);
    expect(takeToken(empty, 0, 100_000).retryAfter).toBe(1);
  });

  it('never holds more than the limit however long the key was idle', () => {
    expect(takeToken({ tokens: 0, at: 0 }, 86_400_000, 10).remaining).toBe(9);
  });
});
