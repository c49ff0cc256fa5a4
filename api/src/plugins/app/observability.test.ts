import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '@epreuve/kube';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import observabilityPlugin, { traceparentOf } from './observability.ts';

/**
 * The request span as the SDK sees it, through a real HTTP server (body parsing included): it is
 * the parent of what the hooks and the handler start, and the request's log lines carry its ids.
 */
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);
trace.setGlobalTracerProvider(provider);
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const tracer = trace.getTracer('observability-test');

/** What the Kubernetes and grader clients do: a span started under whatever is active. */
const clientCall = (name: string) =>
  tracer.startActiveSpan(name, async (span) => {
    await new Promise((r) => setTimeout(r, 2));
    span.end();
  });

const lines: string[] = [];
let app: FastifyInstance;
let url: string;
let written: string | undefined;

beforeAll(async () => {
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().trim().split('\n'));
      cb();
    },
  });
  app = Fastify({
    loggerInstance: createLogger('info', 'api-test', { destination }),
    requestIdHeader: 'x-request-id',
  }) as unknown as FastifyInstance;
  await app.register(observabilityPlugin, {});
  // An instance-wide async hook after the span starts (as rate limit and auth are).
  app.addHook('onRequest', async () => {
    await clientCall('onRequest lookup');
  });
  app.post(
    '/things',
    {
      preHandler: async () => {
        await clientCall('preHandler lookup');
      },
    },
    async (request) => {
      await clientCall('handler call');
      request.log.info({ body: request.body }, 'handled');
      written = traceparentOf(request);
      return { ok: true };
    },
  );
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app.close();
  await provider.shutdown();
  contextManager.disable();
});
beforeEach(() => {
  exporter.reset();
  lines.length = 0;
});

const post = (headers: Record<string, string> = {}) =>
  fetch(`${url}/things`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ name: 'x'.repeat(100_000) }), // several chunks: parsing crosses event-loop turns
  });

/** Lines are written by the time the response ends, "request completed" just after. */
const completed = async () => {
  for (let i = 0; i < 100 && !lines.some((l) => l.includes('request completed')); i++)
    await new Promise((r) => setTimeout(r, 10));
  return lines.map((l) => JSON.parse(l));
};

describe('the request span', () => {
  it('is the parent of the spans its hooks and handler start, across body parsing', async () => {
    expect((await post()).status).toBe(200);
    await completed();
    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.name === 'POST /things')!;
    expect(server).toBeDefined();
    const children = spans.filter((s) => s !== server);
    expect(children.map((s) => s.name).sort()).toEqual([
      'handler call',
      'onRequest lookup',
      'preHandler lookup',
    ]);
    for (const child of children) {
      expect(child.spanContext().traceId, child.name).toBe(server.spanContext().traceId);
      expect(child.parentSpanContext?.spanId, child.name).toBe(server.spanContext().spanId);
    }
    expect(written).toBe(`00-${server.spanContext().traceId}-${server.spanContext().spanId}-01`);
  });

  it('stays active when the body arrives in pieces, long after the headers', async () => {
    const chunks = ['{"name":', '"slow"', '}'];
    const body = new ReadableStream({
      async pull(controller) {
        await new Promise((r) => setTimeout(r, 30));
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(next));
      },
    });
    const res = await fetch(`${url}/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(200);
    await completed();
    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.name === 'POST /things')!;
    for (const name of ['preHandler lookup', 'handler call'])
      expect(spans.find((s) => s.name === name)?.parentSpanContext?.spanId, name).toBe(
        server.spanContext().spanId,
      );
  });

  it('continues the caller’s trace from its traceparent header', async () => {
    const caller = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await post({ traceparent: caller });
    await completed();
    const server = exporter.getFinishedSpans().find((s) => s.name === 'POST /things')!;
    expect(server.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(server.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
  });

  it('ids are on the handler’s log line and on "request completed", once each', async () => {
    await post();
    const logged = await completed();
    const server = exporter.getFinishedSpans().find((s) => s.name === 'POST /things')!;
    const ids = { trace_id: server.spanContext().traceId, span_id: server.spanContext().spanId };
    expect(logged.find((l) => l.msg === 'handled')).toMatchObject(ids);
    expect(logged.find((l) => l.msg === 'request completed')).toMatchObject({
      ...ids,
      req: { method: 'POST', url: '/things', remoteAddress: '127.0.0.1' },
      res: { statusCode: 200 },
      responseTime: expect.any(Number),
    });
    for (const raw of lines.filter((l) => l.includes('"trace_id"')))
      expect(raw.match(/"trace_id"/g)).toHaveLength(1);
  });

  it('is not started for /healthz', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    // Only the test's own hook span, a root: no request span to be its parent.
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['onRequest lookup']);
    expect(spans[0]!.parentSpanContext).toBeUndefined();
  });
});

describe('x-request-id', () => {
  it('is on every response, the caller’s own when it sent one, /healthz and 404s included', async () => {
    const own = await post({ 'x-request-id': 'caller-1' });
    expect(own.headers.get('x-request-id')).toBe('caller-1');
    for (const path of ['/healthz', '/nowhere']) {
      const res = await fetch(`${url}${path}`);
      expect(res.headers.get('x-request-id'), path).toMatch(/\S/);
    }
  });
});

describe('the metrics', () => {
  it('are in the registry, and not served by the app: /metrics is a 404 on its port', async () => {
    expect((await post()).status).toBe(200);
    expect(await app.metricsRegistry.metrics()).toMatch(
      /http_requests_total\{method="POST",route="\/things",status_code="200"\} \d+/,
    );
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('http_requests_total');
  });
});
