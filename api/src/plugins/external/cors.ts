import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * CORS for the configured origins only (EPREUVE_CORS_ORIGINS; none by default). With none,
 * @fastify/cors is not registered at all: with `origin: false` it adds no header and answers a
 * preflight (its `OPTIONS *` route) with the 404 fastify gives without it, but its onRequest hook
 * still ran on every request, reading the route's options twice (2 % of the session endpoint's CPU).
 */
export default fp(
  async function corsPlugin(app: FastifyInstance, opts: { origins: string[] }) {
    if (opts.origins.length === 0) return;
    await app.register(cors, { origin: opts.origins, credentials: false });
  },
  { name: 'external-cors' },
);
