import { Writable } from 'node:stream';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import pino from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createLogger, isoTime, spanIds, withSpanIds } from './log.ts';

const provider = new TracerProvider({
  spanProcessors: [new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() })],
});
const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);
trace.setGlobalTracerProvider(provider);
afterAll(async () => {
  await provider.shutdown();
  contextManager.disable();
});
const tracer = trace.getTracer('log-test');

/** A logger whose lines are collected as raw JSON text (to see duplicate keys too). */
function collecting(redact?: string[]) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().trim().split('\n'));
      cb();
    },
  });
  const log = createLogger('info', 'test', { destination, ...(redact ? { redact } : {}) });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l)) };
}

describe('createLogger', () => {
  it('adds the active span’s trace_id and span_id, across awaits, and nothing outside a span', async () => {
    const { log, parsed } = collecting();
    log.info('before');
    const span = tracer.startSpan('work');
    await context.with(trace.setSpan(context.active(), span), async () => {
      log.info('start');
      await new Promise((r) => setTimeout(r, 5));
      log.child({ step: 2 }).info('after an await, in a child');
    });
    span.end();
    const [before, start, after] = parsed();
    expect(before).not.toHaveProperty('trace_id');
    const { traceId, spanId } = span.spanContext();
    expect(start).toMatchObject({ msg: 'start', trace_id: traceId, span_id: spanId, level: 'info' });
    expect(after).toMatchObject({ step: 2, trace_id: traceId, span_id: spanId });
  });

  it('redacts Secret payloads by default, and the given paths when told', () => {
    const plain = collecting();
    plain.log.info({ secret: { stringData: { password: 'hunter2' } } }, 'x');
    expect(plain.lines[0]).not.toContain('hunter2');
    const api = collecting(['req.headers.authorization']);
    api.log.info({ req: { headers: { authorization: 'Bearer abc' } } }, 'y');
    expect(api.lines[0]).not.toContain('Bearer abc');
    expect(api.parsed()[0].req.headers.authorization).toBe('[redacted]');
  });
});

describe('withSpanIds', () => {
  it('binds a span’s ids to every line, outside its context too, without duplicating them inside', async () => {
    const { log, lines, parsed } = collecting();
    const span = tracer.startSpan('request');
    const bound = withSpanIds(log, span);
    bound.info('outside any context');
    const child = tracer.startSpan('child', {}, trace.setSpan(context.active(), span));
    context.with(trace.setSpan(context.active(), child), () =>
      bound.child({ k: 1 }).info('inside a child span'),
    );
    child.end();
    span.end();
    const { traceId, spanId } = span.spanContext();
    for (const line of parsed()) expect(line).toMatchObject({ trace_id: traceId, span_id: spanId });
    for (const raw of lines) expect(raw.match(/"trace_id"/g)).toHaveLength(1);
  });

  it('returns the logger itself for a span that is not recorded (tracing off)', () => {
    const { log } = collecting();
    const off = trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 });
    expect(spanIds(off)).toBeUndefined();
    expect(withSpanIds(log, off)).toBe(log);
    expect(withSpanIds(log, undefined)).toBe(log);
  });
});

describe('isoTime', () => {
  it('writes what pino’s isoTime writes, formatted again only when the millisecond changes', () => {
    const now = vi.spyOn(Date, 'now');
    try {
      const toISOString = vi.spyOn(Date.prototype, 'toISOString');
      for (const ms of [Date.parse('2026-12-01T07:00:00.001Z'), Date.parse('2026-12-01T07:00:00.002Z')]) {
        now.mockReturnValue(ms);
        expect(isoTime()).toBe(pino.stdTimeFunctions.isoTime());
        expect(isoTime()).toBe(`,"time":"${new Date(ms).toISOString()}"`);
      }
      // pino's own twice per millisecond above, isoTime's once per millisecond, the tests' own twice.
      expect(toISOString).toHaveBeenCalledTimes(6);
      toISOString.mockRestore();
    } finally {
      now.mockRestore();
    }
  });

  it('is the time of every line', () => {
    const { log, parsed } = collecting();
    const before = Date.now();
    log.info('x');
    expect(Date.parse(parsed()[0].time)).toBeGreaterThanOrEqual(before);
  });
});

describe('createLogger with no redaction paths and serializers', () => {
  it('writes values as the serializer makes them, unredacted', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(chunk.toString().trim());
        cb();
      },
    });
    const log = createLogger('info', 'test', {
      destination,
      redact: [],
      serializers: { thing: (t: { keep: string }) => ({ keep: t.keep }) },
    });
    log.info({ thing: { keep: 'k', drop: 'd' }, password: 'p' }, 'x');
    expect(JSON.parse(lines[0]!)).toMatchObject({ thing: { keep: 'k' }, password: 'p' });
  });
});
