/**
 * OpenTelemetry tracing, configured by the standard OTEL_* environment variables, which the
 * SDK reads itself: OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
 * OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf by default, grpc,
 * http/json), OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG),
 * OTEL_PROPAGATORS, OTEL_BSP_*, OTEL_SDK_DISABLED. Metrics stay with Prometheus (/metrics), logs
 * with stdout. The SDK is loaded only when used: it is large.
 */
export async function startTelemetry(
  defaultServiceName: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ shutdown(): Promise<void> } | undefined> {
  const { enabled, serviceName } = telemetrySettings(env, defaultServiceName);
  if (!enabled) return undefined;
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName });
  sdk.start();
  return sdk;
}

/**
 * Whether tracing is on, and the service name to impose. On when an OTLP endpoint is set or
 * OTEL_TRACES_EXPORTER names an exporter (e.g. `console`), unless OTEL_SDK_DISABLED=true.
 * The name follows the spec's precedence: OTEL_SERVICE_NAME, then `service.name` in
 * OTEL_RESOURCE_ATTRIBUTES (`undefined` leaves it to the SDK, which reads them), then the process's own.
 */
export function telemetrySettings(
  env: NodeJS.ProcessEnv,
  defaultServiceName: string,
): { enabled: boolean; serviceName?: string } {
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const enabled =
    env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true' &&
    !exporters.includes('none') &&
    Boolean(
      env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || exporters.length > 0,
    );
  const fromEnv = env.OTEL_SERVICE_NAME?.trim();
  if (fromEnv) return { enabled, serviceName: fromEnv };
  const inAttributes = /(^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '');
  return { enabled, serviceName: inAttributes ? undefined : defaultServiceName };
}
