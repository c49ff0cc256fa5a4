/**
 * Rate limiting: a token bucket per API key, `limit` tokens, refilled at limit/60 per second.
 * Pure (the caller keeps the buckets and passes the clock), unit-tested in rate-limit.test.ts.
 */

export interface Bucket {
  tokens: number;
  at: number; // ms
}
export interface TokenDecision {
  bucket: Bucket;
  allowed: boolean;
  remaining: number;
  /** Whole seconds until a request would be allowed (≥ 1 when refused, 0 when allowed). */
  retryAfter: number;
  /** Whole seconds until the bucket is full again. */
  reset: number;
}

export function takeToken(bucket: Bucket | undefined, now: number, limitPerMinute: number): TokenDecision {
  const perMs = limitPerMinute / 60_000;
  const prev = bucket ?? { tokens: limitPerMinute, at: now };
  const tokens = Math.min(limitPerMinute, prev.tokens + Math.max(0, now - prev.at) * perMs);
  const allowed = tokens >= 1;
  const left = allowed ? tokens - 1 : tokens;
  return {
    bucket: { tokens: left, at: now },
    allowed,
    remaining: Math.floor(left),
    retryAfter: allowed ? 0 : Math.max(1, Math.ceil((1 - left) / perMs / 1000)),
    reset: Math.ceil((limitPerMinute - left) / perMs / 1000),
  };
}
