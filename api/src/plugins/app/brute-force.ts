import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { FailureWindow } from '../../services/failure-window.ts';
import { Problem } from './problem.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Called by auth when a credential was refused: throws 429 when the request's address has
     * failed too often on this route family, else returns (and the refusal goes out as it was).
     */
    throttleFailedAuth(request: FastifyRequest): void;
  }
}

/** Candidate routes and staff routes are counted apart: guessing links does not lock staff out. */
const familyOf = (request: FastifyRequest) =>
  request.routeOptions.url?.startsWith('/api/v1/candidate') ? 'candidate' : 'staff';
const keyOf = (request: FastifyRequest) => `${familyOf(request)}:${request.ip}`;

/**
 * Brute force costs the guesser: every 401/403 counts against the client address and the route
 * family (candidate or staff), and past `failuresPerMinute` further failures from there are refused
 * with 429. A credential is always checked first and a valid one always passes: many people share
 * one address (an office NAT; every client behind an ingress when EPREUVE_TRUSTED_PROXIES is empty),
 * and refusing before the check let one stranger's junk tokens lock them all out. Guessing gains
 * nothing from that: API keys are ≥ 128 random bits, links and OIDC tokens are signed. A candidate's
 * own revoked or ended link (403 on a candidate route: its signature held) is not a failure. The
 * address is the peer's, or the one a trusted proxy names (EPREUVE_TRUSTED_PROXIES), never one a
 * caller picks. Counted in `epreuve_api_auth_failures_total` by status.
 */
export default fp(
  async function bruteForcePlugin(app: FastifyInstance, opts: { failuresPerMinute: number }) {
    const failures = new FailureWindow(opts.failuresPerMinute);
    const counter = new Counter({
      name: 'epreuve_api_auth_failures_total',
      help: 'Requests refused for their credential (401) or their rights (403), and failed ones refused because their address failed too often (429)',
      labelNames: ['status'] as const,
      registers: [app.metricsRegistry],
    });
    app.decorate('throttleFailedAuth', (request: FastifyRequest) => {
      const seconds = failures.retryAfter(keyOf(request), Date.now());
      if (seconds > 0) {
        counter.inc({ status: '429' });
        throw new Problem(429, `too many failed authentications from this address; retry in ${seconds} s`, {
          headers: { 'retry-after': String(seconds) },
        });
      }
    });
    // A callback hook: no promise per response (this one runs on every response).
    app.addHook('onResponse', (request, reply, done) => {
      if (reply.statusCode === 401 || reply.statusCode === 403) {
        if (!(reply.statusCode === 403 && familyOf(request) === 'candidate'))
          failures.record(keyOf(request), Date.now());
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
      done();
    });
  },
  { name: 'brute-force', dependencies: ['audit'] },
);
