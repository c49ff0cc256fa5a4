import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { HealthView, ProblemView } from '../views.ts';
import { PUBLIC, problems } from './schemas.ts';

/** Probes: public, never rate limited (load shedding still answers 503 while the API lags). */
export default async function healthRoutes(app: FastifyInstance) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const probe = { rateLimit: false };

  r.get(
    '/healthz',
    {
      schema: {
        tags: ['probes'],
        summary: 'Alive',
        security: PUBLIC,
        response: { 200: HealthView, ...problems([503], { 503: 'Overloaded (Retry-After)' }) },
      },
      config: probe,
    },
    async () => ({ status: 'ok' }),
  );

  r.get(
    '/readyz',
    {
      schema: {
        tags: ['probes'],
        summary: 'Ready: the caches of assessments and templates are synced',
        security: PUBLIC,
        response: {
          200: HealthView,
          503: {
            description: 'Service Unavailable: the caches are not synced yet, or the API is overloaded',
            content: {
              'application/json': { schema: HealthView },
              'application/problem+json': { schema: ProblemView },
            },
          },
        },
      },
      config: probe,
    },
    async (_request, reply) => {
      const ready = app.assessments.synced();
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'caches not synced' });
    },
  );
}
