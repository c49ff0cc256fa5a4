/**
 * OpenTelemetry tracing, on when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; every standard OTEL_* variable applies). Metrics stay with
 * Prometheus (/metrics), logs with stdout. The SDK is loaded only when used: it is large.
 */
export async function startTelemetry(
  serviceName: string,
): Promise<{ shutdown(): Promise<void> } | undefined> {
  const env = process.env;
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName: env.OTEL_SERVICE_NAME ?? serviceName });
  sdk.start();
  return sdk;
}
