import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Problem } from '../app/problem.ts';

/**
 * Requests per minute per principal (429 + Retry-After beyond), counted after authentication
 * (preHandler): keyed by who the credential proved — a staff subject, a candidate's link — so one
 * noisy token cannot starve a team sharing an address, and junk tokens cannot mint fresh buckets
 * (they never get past authentication; plugins/app/brute-force.ts counts those per address).
 * Anonymous routes are keyed by the client address. Routes tighten it (writes) or turn it off
 * (probes) in their `config.rateLimit`. Bodies are parsed before it runs (the principal is only
 * known once the route's onRequest auth ran): what parsing may cost is bounded where it happens,
 * by the body limit and the JSON depth check (json-body.ts).
 */
export default fp(
  async function rateLimitPlugin(app: FastifyInstance, opts: { perMinute: number }) {
    await app.register(rateLimit, {
      global: true,
      max: opts.perMinute,
      timeWindow: '1 minute',
      hook: 'preHandler',
      keyGenerator: (request) =>
        request.staff
          ? `staff:${request.staff.subject}`
          : request.candidate
            ? `candidate:${request.candidate.assessment.metadata.uid ?? request.candidate.assessment.metadata.name}:${request.candidate.linkId}`
            : `ip:${request.ip}`,
      errorResponseBuilder: (_request, ctx) =>
        new Problem(429, {
          en: `rate limit of ${ctx.max} requests per minute reached; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
          fr: `limite de ${ctx.max} requêtes par minute atteinte ; réessayez dans ${Math.ceil(ctx.ttl / 1000)} s`,
        }),
    });
  },
  { name: 'external-rate-limit' },
);
