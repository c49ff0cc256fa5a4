import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Problem } from '../app/problem.ts';

/**
 * Requests per minute per credential (429 + Retry-After beyond), keyed by the credential so one
 * noisy token cannot starve a team sharing an address. Routes tighten it (writes) or turn it off
 * (probes) in their `config.rateLimit`.
 */
export default fp(
  async function rateLimitPlugin(app: FastifyInstance, opts: { perMinute: number }) {
    await app.register(rateLimit, {
      global: true,
      max: opts.perMinute,
      timeWindow: '1 minute',
      keyGenerator: (request) => request.headers.authorization?.slice(-32) ?? request.ip,
      errorResponseBuilder: (_request, ctx) =>
        new Problem(
          429,
          `rate limit of ${ctx.max} requests per minute reached; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
        ),
    });
  },
  { name: 'external-rate-limit' },
);
