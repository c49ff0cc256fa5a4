import { spanIds } from '@epreuve/kube';
import { context, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

declare module 'fastify' {
  interface FastifyRequest {
    span?: Span;
    /** The matched route's template (`/api/v1/teams/:team`), `unmatched` for a 404; set in onRequest. */
    route: string;
  }
  interface FastifyInstance {
    /**
     * The registry plugins add their metrics to. Served on the metrics port only (main.ts,
     * EPREUVE_METRICS_PORT), never by this app: the public port answers /metrics with a 404.
     */
    metricsRegistry: Registry;
  }
}

const tracer = trace.getTracer('epreuve-api');

/** The W3C traceparent of a request's span, to write on the objects it creates. */
export function traceparentOf(request: FastifyRequest): string | undefined {
  const carrier: Record<string, string> = {};
  if (request.span) propagation.inject(trace.setSpan(context.active(), request.span), carrier);
  return carrier.traceparent;
}

/**
 * RED metrics per route (rate, errors, duration) under the route template, never the raw URL, so
 * cardinality stays bounded; a span per request, continuing the caller's trace. The registry is
 * served by main.ts on its own port: scrapes never cross the internet-facing one, and what the
 * API counts (auth failures per status, team budgets) is not for strangers to read.
 *
 * The request span is the active span for the whole request, so the spans started while serving
 * it (the Kubernetes client's, the grader client's) are its children and every log line carries
 * its ids. Fastify runs a request's hooks and handler as one chain of calls and promise
 * continuations, and carries the async context across body parsing itself (an AsyncResource), so
 * calling onRequest's `done` inside `context.with` keeps the span active to the response.
 * (@fastify/otel wraps every hook and handler instead, each with a span of its own besides the
 * request's: many spans a request where one is wanted, on the candidate endpoints the benchmark
 * holds to hello-world speed.)
 */
export default fp(async function observabilityPlugin(app: FastifyInstance, opts: { registry?: Registry }) {
  const registry = opts.registry ?? new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'epreuve_api_' });
  app.decorate('metricsRegistry', registry);
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route, method and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route, method and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const limited = new Counter({
    name: 'epreuve_api_rate_limited_total',
    help: 'Requests refused by a rate limit, by route',
    labelNames: ['route'] as const,
    registers: [registry],
  });

  app.decorateRequest('span', undefined);
  app.decorateRequest('route', 'unmatched');
  // Callback-style hooks: `done` must be called inside context.with (an async hook's promise
  // would resolve outside it).
  app.addHook('onRequest', (request, reply, done) => {
    // Here rather than in an onSend hook: the first hook, so every response that ran hooks has
    // it (errors included: fastify keeps the headers set before one), and no onSend stage per
    // response. The router's own refusals (frameworkErrors) set it themselves.
    reply.header('x-request-id', request.id);
    // Once: fastify builds routeOptions anew on every read.
    const route = request.routeOptions.url;
    if (route !== undefined) request.route = route;
    if (request.url === '/healthz') {
      done();
      return;
    }
    const parent = propagation.extract(context.active(), request.headers);
    request.span = tracer.startSpan(
      `${request.method} ${route ?? 'unknown'}`,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': request.method, 'http.route': route ?? '' },
      },
      parent,
    );
    context.with(trace.setSpan(context.active(), request.span), done);
  });
  // A callback hook too: no promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    // One line per request, at its end (fastify's own are two: "incoming request" and this one;
    // logging was the largest cost of a request in the session benchmark's profile). The span's
    // ids are given here, since this runs after the response, outside the span: lines logged
    // while it is active get them from the logger's mixin (createLogger). Not a child logger
    // bound to them (withSpanIds): a pino child per request cost 5 % of the session endpoint.
    // `req` and `res` go through the serializers request.log carries (fastify's, and the API
    // logger's `req`, logger.ts): the request itself, not a plain object, or they read `ip` where
    // none is and drop the client's address.
    request.log.info(
      { ...spanIds(request.span), req: request, res: reply, responseTime: reply.elapsedTime },
      'request completed',
    );
    const route = request.route;
    const labels = { method: request.method, route, status_code: String(reply.statusCode) };
    requests.inc(labels);
    duration.observe(labels, reply.elapsedTime / 1000);
    if (reply.statusCode === 429) limited.inc({ route });
    if (request.span) {
      request.span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) request.span.setStatus({ code: SpanStatusCode.ERROR });
      request.span.end();
    }
    done();
  });
});
