import { Counter, Registry } from 'prom-client';

/** Why a request was kept out of the reviewer log (the keys of `RejectedCounts` in app.ts). */
export type RejectedReason = 'missing_key' | 'invalid_key' | 'throttled' | 'anonymous';

/**
 * The data API's Prometheus metrics, served on the admin port only (never the candidates' one,
 * which the gateway routes): what strangers and a candidate's own client cost the sandbox, which
 * the reviewer log deliberately leaves out so no flood can erase it. Counts only, no labels that
 * grow with traffic (no client address, no path).
 */
export class DataApiMetrics {
  readonly registry = new Registry();
  private readonly rejected = new Counter({
    name: 'epreuve_data_api_rejected_requests_total',
    help: 'Requests kept out of the reviewer log, by reason: no key, a wrong key, throttled wrong keys, unauthenticated pages',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly limited = new Counter({
    name: 'epreuve_data_api_rate_limited_total',
    help: 'Requests with the right key refused by the per-minute rate limit (429)',
    registers: [this.registry],
  });

  constructor() {
    // Every reason at 0 from the start: rate() and alerts see the series before the first one.
    for (const reason of ['missing_key', 'invalid_key', 'throttled', 'anonymous'] as const)
      this.rejected.inc({ reason }, 0);
  }

  reject(reason: RejectedReason): void {
    this.rejected.inc({ reason });
  }

  rateLimited(): void {
    this.limited.inc();
  }
}
