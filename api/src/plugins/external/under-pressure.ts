import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Problem } from '../app/problem.ts';

/** Load shedding: 503 + Retry-After while the event loop lags more than `maxEventLoopDelayMs`. */
export default fp(
  async function underPressurePlugin(
    app: FastifyInstance,
    opts: { maxEventLoopDelayMs: number; sampleIntervalMs: number },
  ) {
    await app.register(underPressure, {
      maxEventLoopDelay: opts.maxEventLoopDelayMs,
      sampleInterval: opts.sampleIntervalMs,
      retryAfter: 5,
      exposeStatusRoute: false,
      pressureHandler: () => {
        throw new Problem(503, 'the API is overloaded; retry in a few seconds', {
          headers: { 'retry-after': '5' },
        });
      },
    });
  },
  { name: 'external-under-pressure' },
);
