/**
 * A token bucket: `qps` tokens a second, at most `burst` saved up. Used for the API client's QPS
 * budget (client-go's flowcontrol) and the workqueue's overall rate limit.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly now: () => number;

  constructor(qps: number, burst: number, now: () => number = () => performance.now()) {
    if (!(qps > 0) || !(burst >= 1))
      throw new Error(`token bucket needs qps > 0 and burst ≥ 1, got ${qps}/${burst}`);
    this.qps = qps;
    this.burst = burst;
    this.now = now;
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
  }

  /** Reserves one token; returns how many ms the caller must wait before using it (0 if none). */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  /** Takes a token if one is there (returns 0); else takes nothing and returns the ms until one is. */
  tryTake(): number {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return ((1 - this.tokens) / this.qps) * 1000;
  }

  /** Waits until a token is available, then takes it. */
  async take(): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
