/**
 * Events per client address in a fixed window (failed authentications; audited denials). Hand-
 * written because @fastify/rate-limit counts every request, not only the failed ones, and it runs
 * before the response is known. Bounded: at most `maxClients` addresses are remembered (the oldest window is
 * dropped first), so a spray from many addresses costs memory only up to that bound.
 */
export class FailureWindow {
  private readonly windows = new Map<string, { start: number; failures: number }>();
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly maxClients: number;

  constructor(limit: number, windowMs = 60_000, maxClients = 100_000) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.maxClients = maxClients;
  }

  /** Seconds until `client` may try again, or 0 when it may now. */
  retryAfter(client: string, now: number): number {
    const window = this.windows.get(client);
    if (!window || now - window.start >= this.windowMs) return 0;
    return window.failures >= this.limit ? Math.ceil((window.start + this.windowMs - now) / 1000) : 0;
  }

  record(client: string, now: number): void {
    const window = this.windows.get(client);
    if (window && now - window.start < this.windowMs) {
      window.failures += 1;
      return;
    }
    this.windows.delete(client);
    this.windows.set(client, { start: now, failures: 1 });
    if (this.windows.size > this.maxClients) {
      const oldest = this.windows.keys().next().value;
      if (oldest !== undefined) this.windows.delete(oldest);
    }
  }

  get size(): number {
    return this.windows.size;
  }
}
