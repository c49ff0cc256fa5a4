import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** CORS for the configured origins only (EPREUVE_CORS_ORIGINS; none by default). */
export default fp(
  async function corsPlugin(app: FastifyInstance, opts: { origins: string[] }) {
    await app.register(cors, { origin: opts.origins.length ? opts.origins : false, credentials: false });
  },
  { name: 'external-cors' },
);
