import {
  type Attributes,
  type Link,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';

/** A span link from a W3C traceparent header value (00-<trace>-<span>-<flags>), if valid. */
export function linkFromTraceparent(value: string | undefined): Link | undefined {
  const m = value && /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value.trim());
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return {
    context: {
      traceId: m[1]!,
      spanId: m[2]!,
      traceFlags: Number.parseInt(m[3]!, 16) & TraceFlags.SAMPLED,
      isRemote: true,
    },
  };
}

export type { Span };

/**
 * Starts a span its caller ends, for work whose events arrive outside any async context (a TCP
 * connection's): log through {@link withSpanIds} to tie its lines to it. Processes without a
 * direct dependency on the OpenTelemetry API (the gateway) start their spans here.
 */
export function startSpan(
  tracerName: string,
  name: string,
  o: { kind?: 'server' | 'client' | 'internal'; attributes?: Attributes } = {},
): Span {
  const kind = { server: SpanKind.SERVER, client: SpanKind.CLIENT, internal: SpanKind.INTERNAL }[
    o.kind ?? 'internal'
  ];
  return trace.getTracer(tracerName).startSpan(name, { kind, attributes: o.attributes });
}

/** Ends a span once (later calls do nothing), marked as failed when `error` is given. */
export function endSpan(span: Span, error?: string): void {
  if (!span.isRecording()) return;
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}
