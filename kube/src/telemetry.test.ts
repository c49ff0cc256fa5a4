import { describe, expect, it } from 'vitest';
import { startTelemetry, telemetrySettings } from './telemetry.ts';

describe('telemetrySettings', () => {
  it('is off without an endpoint or an exporter, and on with either endpoint variable', () => {
    expect(telemetrySettings({}, 'svc').enabled).toBe(false);
    expect(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' }, 'svc').enabled).toBe(true);
    expect(
      telemetrySettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://o:4318/v1/traces' }, 's').enabled,
    ).toBe(true);
    expect(telemetrySettings({ OTEL_TRACES_EXPORTER: 'console' }, 'svc').enabled).toBe(true);
  });

  it('stays off when OTEL_SDK_DISABLED=true or the traces exporter is none', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' };
    expect(telemetrySettings({ ...endpoint, OTEL_SDK_DISABLED: 'TRUE' }, 'svc').enabled).toBe(false);
    expect(telemetrySettings({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' }, 'svc').enabled).toBe(false);
    expect(telemetrySettings({ ...endpoint, OTEL_SDK_DISABLED: 'false' }, 'svc').enabled).toBe(true);
  });

  it('names the service OTEL_SERVICE_NAME, else service.name of OTEL_RESOURCE_ATTRIBUTES, else its own', () => {
    expect(telemetrySettings({ OTEL_SERVICE_NAME: 'api-eu' }, 'epreuve-api').serviceName).toBe('api-eu');
    expect(
      telemetrySettings(
        { OTEL_SERVICE_NAME: 'api-eu', OTEL_RESOURCE_ATTRIBUTES: 'service.name=other' },
        'epreuve-api',
      ).serviceName,
    ).toBe('api-eu');
    // Left to the SDK, which reads the attribute; imposing the default would override it.
    expect(
      telemetrySettings({ OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod, service.name=x' }, 'a')
        .serviceName,
    ).toBeUndefined();
    expect(
      telemetrySettings({ OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod' }, 'epreuve-api')
        .serviceName,
    ).toBe('epreuve-api');
  });
});

describe('startTelemetry', () => {
  it('loads nothing and returns undefined when tracing is off', async () => {
    expect(await startTelemetry('svc', {})).toBeUndefined();
  });
});
