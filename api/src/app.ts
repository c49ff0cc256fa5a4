import type { KubeClient } from '@epreuve/kube';
import Fastify, { type FastifyInstance, type FastifySerializerCompiler, LogController } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { ApiConfig } from './config.ts';
import { registerJsonParser } from './json-body.ts';
import authPlugin from './plugins/app/auth.ts';
import bruteForcePlugin from './plugins/app/brute-force.ts';
import observabilityPlugin from './plugins/app/observability.ts';
import problemPlugin, { frameworkErrors } from './plugins/app/problem.ts';
import acceptsPlugin from './plugins/external/accepts.ts';
import corsPlugin from './plugins/external/cors.ts';
import helmetPlugin from './plugins/external/helmet.ts';
import rateLimitPlugin from './plugins/external/rate-limit.ts';
import swaggerPlugin from './plugins/external/swagger.ts';
import underPressurePlugin from './plugins/external/under-pressure.ts';
import candidateRoutes from './routes/candidate.ts';
import healthRoutes from './routes/health.ts';
import pageRoutes from './routes/pages.ts';
import reviewerRoutes from './routes/reviewer.ts';
import staffRoutes from './routes/staff.ts';
import webhookRoutes from './routes/webhooks.ts';
import { serializerCompiler } from './serializer.ts';
import assessmentsPlugin, { type AssessmentStore } from './services/assessments.ts';
import auditPlugin, { type AuditTrail } from './services/audit.ts';
import candidatesPlugin from './services/candidates.ts';
import consolePlugin from './services/console.ts';
import gradingPlugin from './services/grading.ts';
import hibernationPlugin from './services/hibernation.ts';
import interviewsPlugin from './services/interviews.ts';
import linksPlugin, { type LinkSigner } from './services/links.ts';
import requestLogsPlugin from './services/request-log.ts';
import scorecardsPlugin from './services/scorecards.ts';
import staffAuthPlugin, { StaffAuthenticator } from './services/staff-auth.ts';
import webhooksPlugin from './services/webhooks.ts';

export interface AppDeps {
  config: ApiConfig;
  client: KubeClient;
  store: AssessmentStore;
  links: LinkSigner;
  logger?: Logger | boolean;
  staffAuth?: StaffAuthenticator;
  /** Where audit lines go (default: its own logger on stdout; tests collect them). */
  audit?: AuditTrail;
  /**
   * Serializes responses by the routes' response schemas (default: serializer.ts, compiled from
   * them, which drops undeclared fields). Tests wrap it to prove nothing is dropped.
   */
  serializerCompiler?: FastifySerializerCompiler<unknown>;
}

/**
 * The Épreuve API, fastify-demo style: external plugins (security headers, CORS, rate limit, load
 * shedding, OpenAPI), then app plugins (problem+json errors, observability, the services as
 * decorators — app.assessments, app.links, app.grading, … — and auth), then routes, each holding
 * its request and response schemas.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: typeof deps.logger === 'object' ? deps.logger : undefined,
    logger: typeof deps.logger === 'boolean' ? deps.logger : undefined,
    requestIdHeader: 'x-request-id',
    // One line per request, written by the observability plugin when the response ends. (The
    // top-level `disableRequestLogging` is deprecated in fastify 5 and warned on every start.)
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => crypto.randomUUID(),
    bodyLimit: config.EPREUVE_BODY_LIMIT_BYTES,
    // Only the configured proxies may say who the client is (X-Forwarded-For); no one else.
    trustProxy: config.EPREUVE_TRUSTED_PROXIES.length > 0 ? config.EPREUVE_TRUSTED_PROXIES : false,
    frameworkErrors,
  });
  // JSON bodies nested too deep are refused before they are parsed (see json-body.ts).
  registerJsonParser(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(deps.serializerCompiler ?? serializerCompiler);
  // Observability and errors first: they see (and shape) every response, the external plugins' too
  // (observability's onRequest, the first hook, sets x-request-id).
  await app.register(observabilityPlugin, {});
  await app.register(problemPlugin);
  await app.register(auditPlugin, { trail: deps.audit });

  // External plugins
  await app.register(helmetPlugin);
  await app.register(acceptsPlugin);
  await app.register(corsPlugin, { origins: config.EPREUVE_CORS_ORIGINS });
  await app.register(rateLimitPlugin, { perMinute: config.EPREUVE_RATE_LIMIT_PER_MINUTE });
  await app.register(bruteForcePlugin, { failuresPerMinute: config.EPREUVE_AUTH_FAILURES_PER_MINUTE });
  await app.register(underPressurePlugin, {
    maxEventLoopDelayMs: config.EPREUVE_MAX_EVENT_LOOP_DELAY_MS,
    sampleIntervalMs: config.EPREUVE_LOAD_SAMPLE_INTERVAL_MS,
  });
  await app.register(swaggerPlugin);

  // App plugins: the services (no HTTP in them), then auth, which uses them
  await app.register(assessmentsPlugin, { store: deps.store });
  await app.register(staffAuthPlugin, { authenticator: deps.staffAuth ?? new StaffAuthenticator(config) });
  await app.register(linksPlugin, {
    signer: deps.links,
    publicUrl: config.EPREUVE_PUBLIC_URL,
    maxAgeMs: config.EPREUVE_LINK_MAX_AGE_HOURS * 3600_000,
  });
  await app.register(gradingPlugin, { client: deps.client, graderUrl: config.EPREUVE_GRADER_URL });
  await app.register(consolePlugin, { client: deps.client, graderUrl: config.EPREUVE_GRADER_URL });
  await app.register(candidatesPlugin, {
    client: deps.client,
    gateway: config.EPREUVE_GATEWAY_DOMAIN
      ? {
          domain: config.EPREUVE_GATEWAY_DOMAIN,
          port: config.EPREUVE_GATEWAY_PUBLIC_PORT,
          certTrusted: config.EPREUVE_GATEWAY_CERT_TRUSTED,
          address: config.EPREUVE_GATEWAY_ADDRESS,
        }
      : undefined,
  });
  await app.register(interviewsPlugin, { client: deps.client });
  await app.register(hibernationPlugin, { client: deps.client }); // staff reopen (issue 17)
  await app.register(requestLogsPlugin, {
    client: deps.client,
    adminPort: config.EPREUVE_DATA_API_ADMIN_PORT,
  });
  await app.register(scorecardsPlugin);
  await app.register(webhooksPlugin, { client: deps.client });
  await app.register(authPlugin);

  // Routes
  const writesPerMinute = config.EPREUVE_RATE_LIMIT_WRITES_PER_MINUTE;
  await app.register(healthRoutes);
  await app.register(staffRoutes, { prefix: '/api/v1', writesPerMinute });
  await app.register(candidateRoutes, { prefix: '/api/v1', writesPerMinute });
  await app.register(reviewerRoutes, { prefix: '/api/v1' });
  await app.register(webhookRoutes, { prefix: '/api/v1' });
  await app.register(pageRoutes);
  return app as unknown as FastifyInstance;
}
