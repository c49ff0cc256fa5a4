import { type Link, TraceFlags } from '@opentelemetry/api';

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
