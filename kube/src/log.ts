import { type Span, trace } from '@opentelemetry/api';
import pino, { type DestinationStream, type Logger, type LoggerOptions as PinoOptions } from 'pino';

/** Marks a logger bound to a span by {@link withSpanIds}: the mixin then adds nothing (no duplicate keys). */
const SPAN_BOUND = Symbol('epreuve.spanBound');

/** What every process redacts unless told otherwise: nothing it logs should hold credentials. */
const DEFAULT_REDACT = ['*.stringData', '*.data', 'stringData', 'data', '*.password', 'password'];

export interface LoggerOptions {
  /** pino redact paths (default: Secret payloads and passwords); none: no redaction pass. */
  redact?: string[];
  /** pino serializers, by key (what a line writes of a value logged under that key). */
  serializers?: PinoOptions['serializers'];
  /** Where lines go (default: stdout); tests pass a stream that collects them. */
  destination?: DestinationStream;
}

/** A span's trace and span ids as log fields; none when tracing is off (an invalid span context). */
export function spanIds(span: Span | undefined): { trace_id: string; span_id: string } | undefined {
  const ctx = span?.spanContext();
  return ctx && trace.isSpanContextValid(ctx) ? { trace_id: ctx.traceId, span_id: ctx.spanId } : undefined;
}

/**
 * pino's ISO timestamp (`,"time":"2026-12-01T07:00:00.000Z"`), formatted once per millisecond: a
 * busy process writes many lines a millisecond, and the Date and toISOString were a line's
 * largest single cost after the JSON itself.
 */
let lastMs = Number.NaN;
let lastTime = '';
export function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/**
 * JSON logs on stdout; every line logged while a span is active carries its `trace_id` and
 * `span_id`, so logs and traces join up. A pino mixin rather than @opentelemetry/instrumentation-pino:
 * that one patches pino through module-loading hooks (an --import loader for ESM), for the same two fields.
 */
export function createLogger(level: string, name = 'epreuve-operator', opts: LoggerOptions = {}): Logger {
  const redact = opts.redact ?? DEFAULT_REDACT;
  return pino(
    {
      name,
      level,
      base: undefined,
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin(_obj, _level, logger) {
        if ((logger as Logger & { [SPAN_BOUND]?: true })[SPAN_BOUND]) return {};
        return spanIds(trace.getActiveSpan()) ?? {};
      },
      ...(opts.serializers && { serializers: opts.serializers }),
      // Each path is a pass over every line holding its first key: none when there is none.
      ...(redact.length > 0 && { redact: { paths: redact, censor: '[redacted]' } }),
    },
    opts.destination,
  );
}

/**
 * A child logger whose every line carries `span`'s ids, wherever it is called from: for lines
 * logged outside the span's async context (an HTTP server's "request completed", written after
 * the response is sent). Its own children inherit the binding.
 */
export function withSpanIds(log: Logger, span: Span | undefined): Logger {
  const ids = spanIds(span);
  if (!ids) return log;
  const child = log.child(ids) as Logger & { [SPAN_BOUND]?: true };
  child[SPAN_BOUND] = true;
  return child;
}
