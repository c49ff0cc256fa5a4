import { TokenBucket } from './token-bucket.ts';

export interface RateLimiter {
  /** How long to wait before retrying `key` (also counts a failure). */
  when(key: string): number;
  /** Forget a key's failures after a success. */
  forget(key: string): void;
  failures(key: string): number;
}

/** Per-key exponential backoff: base · 2^failures, capped (client-go: 5 ms → 1000 s). */
export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly counts = new Map<string, number>();
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(baseMs = 5, maxMs = 1000_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }

  when(key: string): number {
    const n = this.counts.get(key) ?? 0;
    this.counts.set(key, n + 1);
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }

  forget(key: string): void {
    this.counts.delete(key);
  }

  failures(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}

/** An overall token bucket over every key (client-go: 10 qps, burst 100). */
export class BucketRateLimiter implements RateLimiter {
  private readonly bucket: TokenBucket;

  constructor(qps = 10, burst = 100, now?: () => number) {
    this.bucket = new TokenBucket(qps, burst, now);
  }

  when(): number {
    return this.bucket.reserve();
  }

  forget(): void {}

  failures(): number {
    return 0;
  }
}

/** The largest delay of several limiters: controller-runtime's default is exponential + bucket. */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  failures(key: string): number {
    return Math.max(...this.limiters.map((l) => l.failures(key)));
  }
}

export const defaultControllerRateLimiter = () =>
  new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 1000_000), new BucketRateLimiter(10, 100));
