import type { KubeClient } from '@epreuve/kube';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { ApiConfig } from './config.ts';
import authPlugin from './plugins/auth.ts';
import observabilityPlugin from './plugins/observability.ts';
import problemPlugin, { Problem } from './plugins/problem.ts';
import candidateRoutes from './routes/candidate.ts';
import pageRoutes from './routes/pages.ts';
import reviewerRoutes from './routes/reviewer.ts';
import staffRoutes from './routes/staff.ts';
import type { AssessmentStore } from './services/assessments.ts';
import { GradingService } from './services/grading.ts';
import type { LinkSigner } from './services/links.ts';
import { StaffAuthenticator } from './services/staff-auth.ts';

export interface AppDeps {
  config: ApiConfig;
  client: KubeClient;
  store: AssessmentStore;
  links: LinkSigner;
  logger?: Logger | boolean;
  staffAuth?: StaffAuthenticator;
}

/**
 * The Épreuve API, fastify-demo style: external plugins (security, limits, docs), then app plugins
 * (errors, auth), then routes, each encapsulated.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: typeof deps.logger === 'object' ? deps.logger : undefined,
    logger: typeof deps.logger === 'boolean' ? deps.logger : undefined,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    bodyLimit: config.EPREUVE_BODY_LIMIT_BYTES,
    trustProxy: true,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // External plugins
  await app.register(observabilityPlugin, {});
  await app.register(problemPlugin);
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
      },
    },
  });
  await app.register(cors, {
    origin: config.EPREUVE_CORS_ORIGINS.length ? config.EPREUVE_CORS_ORIGINS : false,
    credentials: false,
  });
  await app.register(rateLimit, {
    global: true,
    max: config.EPREUVE_RATE_LIMIT_PER_MINUTE,
    timeWindow: '1 minute',
    // Keyed by credential, so one noisy token cannot starve a team sharing an address.
    keyGenerator: (request) => request.headers.authorization?.slice(-32) ?? request.ip,
    errorResponseBuilder: (_request, ctx) =>
      new Problem(
        429,
        `rate limit of ${ctx.max} requests per minute reached; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
      ),
  });
  await app.register(underPressure, {
    maxEventLoopDelay: config.EPREUVE_MAX_EVENT_LOOP_DELAY_MS,
    sampleInterval: config.EPREUVE_LOAD_SAMPLE_INTERVAL_MS,
    retryAfter: 5,
    exposeStatusRoute: false,
    pressureHandler: (_req, reply) => {
      reply.header('retry-after', '5');
      throw new Problem(503, 'the API is overloaded; retry in a few seconds');
    },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Épreuve API',
        version: '0.1.0',
        description: 'Create and manage assessments; candidates reach their sandboxes and get graded.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  // App plugins
  await app.register(authPlugin, {
    staff: deps.staffAuth ?? new StaffAuthenticator(config),
    links: deps.links,
    store: deps.store,
  });

  // Routes
  app.get('/healthz', { config: { rateLimit: false } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { rateLimit: false } }, async (_req, reply) => {
    const ready = deps.store.assessments.hasSynced() && deps.store.templates.hasSynced();
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'caches not synced' });
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  const grading = new GradingService(deps.client, deps.store);
  await app.register(staffRoutes, {
    prefix: '/api/v1',
    grading,
    store: deps.store,
    links: deps.links,
    publicUrl: config.EPREUVE_PUBLIC_URL,
    linkMaxAgeMs: config.EPREUVE_LINK_MAX_AGE_HOURS * 3600_000,
    writesPerMinute: config.EPREUVE_RATE_LIMIT_WRITES_PER_MINUTE,
  });
  await app.register(candidateRoutes, {
    prefix: '/api/v1',
    store: deps.store,
    client: deps.client,
    links: deps.links,
    grading,
    writesPerMinute: config.EPREUVE_RATE_LIMIT_WRITES_PER_MINUTE,
    gateway: config.EPREUVE_GATEWAY_DOMAIN
      ? {
          domain: config.EPREUVE_GATEWAY_DOMAIN,
          port: config.EPREUVE_GATEWAY_PUBLIC_PORT,
          certTrusted: config.EPREUVE_GATEWAY_CERT_TRUSTED,
          address: config.EPREUVE_GATEWAY_ADDRESS,
        }
      : undefined,
  });
  await app.register(pageRoutes);
  await app.register(reviewerRoutes, { prefix: '/api/v1', store: deps.store, client: deps.client });
  return app as unknown as FastifyInstance;
}
