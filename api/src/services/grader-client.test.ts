import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, describe, expect, it } from 'vitest';
import { GraderClient, MAX_REPLY_BYTES } from './grader-client.ts';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);
trace.setGlobalTracerProvider(provider);
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
afterAll(async () => {
  await provider.shutdown();
  contextManager.disable();
});

const request = {
  sandbox: 'warehouse',
  kind: 'sql' as const,
  reference: 'SELECT 1',
  options: { orderMatters: false, numericTolerance: 0, ignoreColumnNames: false },
  answer: 'SELECT 1',
};

function client(respond: (url: string, init: RequestInit) => Response | Promise<Response>, token = 't0k3n') {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const c = new GraderClient({
    token: async () => token,
    fetch: (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return respond(url, init);
    }) as unknown as typeof fetch,
  });
  return { c, calls };
}

describe('GraderClient', () => {
  it('posts the answer to the namespace grader with its token and returns the verdict', async () => {
    const { c, calls } = client(() =>
      Response.json({ pass: true, explanation: 'Correct', hint: 'Correct.', expectedRows: 1, actualRows: 1 }),
    );
    const out = await c.grade('epreuve-jane-abcde', request);
    expect(out).toEqual({
      kind: 'graded',
      result: { pass: true, explanation: 'Correct', hint: 'Correct.', expectedRows: 1, actualRows: 1 },
    });
    expect(calls[0]!.url).toBe('http://grader.epreuve-jane-abcde.svc:8080/v1/grade');
    expect((calls[0]!.init.headers as Record<string, string>).authorization).toBe('Bearer t0k3n');
  });

  it('posts a check task to /v1/check and returns each check’s verdict', async () => {
    const checks = [
      { name: 'customers-complete', pass: false, hint: 'Load them all.', explanation: 'got 3' },
    ];
    const { c, calls } = client(() =>
      Response.json({
        pass: false,
        explanation: 'FAIL',
        hint: '1 of 1 check fail.',
        expectedRows: 1,
        actualRows: 0,
        checks,
      }),
    );
    const check = {
      name: 'customers-complete',
      sql: 'SELECT 1',
      expect: { noRows: true },
      hint: 'Load them all.',
    };
    const out = await c.check('epreuve-jane-abcde', { sandbox: 'warehouse', checks: [check] });
    expect(out).toMatchObject({ kind: 'graded', result: { pass: false, checks } });
    expect(calls[0]!.url).toBe('http://grader.epreuve-jane-abcde.svc:8080/v1/check');
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ sandbox: 'warehouse', checks: [check] });
  });

  it('turns a busy, dead or unreachable grader into "unavailable" with a retry delay', async () => {
    const busy = client(
      () => new Response('{"detail":"busy"}', { status: 429, headers: { 'retry-after': '2' } }),
    );
    expect(await busy.c.grade('ns', request)).toEqual({
      kind: 'unavailable',
      reason: 'busy',
      retryAfterSeconds: 2,
    });
    const down = client(() => {
      throw new TypeError('fetch failed');
    });
    expect((await down.c.grade('ns', request)).kind).toBe('unavailable');
    const garbage = client(() => new Response('not json', { status: 200 }));
    expect((await garbage.c.grade('ns', request)).kind).toBe('unavailable');
    const lagging = client(() => new Response('{"detail":"no MongoDB sandbox events"}', { status: 404 }));
    expect(await lagging.c.grade('ns', request)).toMatchObject({
      kind: 'unavailable',
      reason: 'no MongoDB sandbox events',
    });
    const noToken = client(() => Response.json({}), '');
    expect((await noToken.c.grade('ns', request)).kind).toBe('unavailable');
  });

  it('reads at most MAX_REPLY_BYTES of a reply: a huge one is "unavailable", and the rest is never read', async () => {
    let pulled = 0;
    const chunk = new Uint8Array(1 << 20).fill(0x20);
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(chunk);
      },
    });
    const { c } = client(() => new Response(endless, { status: 200 }));
    const out = await c.run('epreuve-jane-abcde', { sandbox: 'warehouse', query: 'SELECT 1' });
    expect(out).toEqual({
      kind: 'unavailable',
      reason: `the grader's reply was larger than ${MAX_REPLY_BYTES >> 20} MiB`,
      retryAfterSeconds: 5,
    });
    // The stream was cancelled just past the cap (a few chunks of read-ahead at most).
    expect(pulled).toBeLessThan((MAX_REPLY_BYTES >> 20) + 4);
  });

  it('reports a refusal that is the API’s or the template’s fault (stale token, broken reference)', async () => {
    const { c } = client(() => new Response('{"detail":"invalid credentials"}', { status: 401 }));
    expect(await c.grade('ns', request)).toEqual({
      kind: 'refused',
      status: 401,
      reason: 'invalid credentials',
    });
  });

  it('is a client span, a child of the active one, whose context it sends to the grader', async () => {
    exporter.reset();
    const { c, calls } = client(() => new Response('{"detail":"busy"}', { status: 503 }));
    const request_ = trace.getTracer('test').startSpan('POST /candidate/submissions');
    await context.with(trace.setSpan(context.active(), request_), () =>
      c.grade('epreuve-jane-abcde', request),
    );
    request_.end();
    const span = exporter.getFinishedSpans().find((s) => s.name === 'grader POST /v1/grade')!;
    expect(span.parentSpanContext?.spanId).toBe(request_.spanContext().spanId);
    expect(span.attributes).toMatchObject({
      'epreuve.namespace': 'epreuve-jane-abcde',
      'epreuve.sandbox': 'warehouse',
      'epreuve.grader.outcome': 'unavailable',
    });
    expect(span.status).toMatchObject({ code: 2, message: 'busy' });
    const sent = (calls[0]!.init.headers as Record<string, string>).traceparent;
    expect(sent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
  });

  it('posts a console run to /v1/run: its result, the statement failure with its position, or why not', async () => {
    const result = {
      columns: ['n'],
      rows: [[1]],
      rowCount: 1,
      truncated: false,
      command: 'SELECT',
      durationMs: 2,
    };
    const ok = client(() => Response.json(result));
    expect(await ok.c.run('ns1', { sandbox: 'warehouse', query: 'SELECT 1' })).toEqual({
      kind: 'ran',
      result,
    });
    expect(ok.calls[0]!.url).toBe('http://grader.ns1.svc:8080/v1/run');
    const failed = client(() =>
      Response.json(
        { status: 422, detail: 'syntax error at or near "FRM"', reason: 'SqlError', position: 10 },
        { status: 422 },
      ),
    );
    expect(await failed.c.run('ns1', { sandbox: 'warehouse', query: 'SELECT 1 FRM' })).toEqual({
      kind: 'failed',
      reason: 'SqlError',
      message: 'syntax error at or near "FRM"',
      position: 10,
    });
    // A 422 without a reason is not the statement's: the grader refused the request.
    const odd = client(() => Response.json({ detail: 'what?' }, { status: 422 }));
    expect(await odd.c.run('ns1', { sandbox: 'w', query: 'x' })).toMatchObject({
      kind: 'refused',
      status: 422,
    });
    const busy = client(() =>
      Response.json({ detail: 'busy' }, { status: 429, headers: { 'retry-after': '2' } }),
    );
    expect(await busy.c.run('ns1', { sandbox: 'w', query: 'x' })).toEqual({
      kind: 'unavailable',
      reason: 'busy',
      retryAfterSeconds: 2,
    });
    const garbled = client(() => Response.json({ columns: 'no' }));
    expect(await garbled.c.run('ns1', { sandbox: 'w', query: 'x' })).toMatchObject({ kind: 'unavailable' });
  });
});
