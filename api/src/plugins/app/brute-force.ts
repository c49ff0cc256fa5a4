import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { FailureWindow } from '../../services/failure-window.ts';
import { Problem } from './problem.ts';

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
