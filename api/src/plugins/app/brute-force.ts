import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { Problem } from './problem.ts';

/**
 * Failed authentications per client address in a fixed one-minute window. Hand-written because
 * @fastify/rate-limit counts every request, not only the failed ones, and it runs before the
 * response is known. Bounded: at most `maxClients` addresses are remembered (the oldest window is
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

/**
 * Brute force costs the guesser: every 401/403 counts against the client address, and past
 * `failuresPerMinute` its requests are refused with 429 before any credential is looked at. The
 * address is the peer's, or the one a trusted proxy names (EPREUVE_TRUSTED_PROXIES), never one a
 * caller picks. Counted in `epreuve_api_auth_failures_total` by status.
 */
export default fp(
  async function bruteForcePlugin(app: FastifyInstance, opts: { failuresPerMinute: number }) {
    const failures = new FailureWindow(opts.failuresPerMinute);
    const counter = new Counter({
      name: 'epreuve_api_auth_failures_total',
      help: 'Requests refused for their credential (401) or their rights (403), and requests refused because their address failed too often (429)',
      labelNames: ['status'] as const,
      registers: [app.metricsRegistry],
    });
    app.addHook('onRequest', async (request) => {
      const seconds = failures.retryAfter(request.ip, Date.now());
      if (seconds > 0) {
        counter.inc({ status: '429' });
        throw new Problem(429, `too many failed authentications from this address; retry in ${seconds} s`, {
          headers: { 'retry-after': String(seconds) },
        });
      }
    });
    app.addHook('onResponse', async (request, reply) => {
      if (reply.statusCode === 401 || reply.statusCode === 403) {
        failures.record(request.ip, Date.now());
        counter.inc({ status: String(reply.statusCode) });
        // Sampled per address into the audit trail: a flood cannot drown what matters there.
        app.audit.deny({
          actor: request.staff?.subject ?? (request.candidate ? 'candidate' : `anonymous:${request.ip}`),
          role: request.staff?.role,
          action: `${request.method} ${request.routeOptions.url ?? 'unmatched'}`,
          target: { status: reply.statusCode, ...(request.params as Record<string, unknown>) },
          requestId: request.id,
          client: request.ip,
        });
      }
    });
  },
  { name: 'brute-force', dependencies: ['audit'] },
);
