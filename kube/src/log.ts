import { trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';

/** JSON logs on stdout; every line carries the active trace id, so logs and traces join up. */
export function createLogger(level: string, name = 'epreuve-operator'): Logger {
  return pino({
    name,
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const ctx = trace.getActiveSpan()?.spanContext();
      return ctx ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
    },
    // Defence in depth: nothing the operator logs should hold credentials, but never print them.
    redact: {
      paths: ['*.stringData', '*.data', 'stringData', 'data', '*.password', 'password'],
      censor: '[redacted]',
    },
  });
}
