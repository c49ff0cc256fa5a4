import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, Supervisor } from '../../hack/cluster/supervisor.ts';

const HACK_DIR = join(import.meta.dirname, '..', '..', 'hack');

/** A span as Jaeger's query API (/api/traces) returns it. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: Array<{ refType: 'CHILD_OF' | 'FOLLOWS_FROM'; traceID: string; spanID: string }>;
  tags: Array<{ key: string; type: string; value: unknown }>;
  processID: string;
  startTime: number;
  duration: number;
}
export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: Array<{ key: string; value: unknown }> }>;
}

/** A tag's value on a span, if it has it. */
export const tag = (span: JaegerSpan, key: string) => span.tags.find((t) => t.key === key)?.value;

/**
 * The Jaeger binary (v2, the OpenTelemetry-collector based `cmd/jaeger`) built from the Go module
 * proxy by hack/build-go-tool.sh and cached by version; TEST_ASSET_JAEGER points at another.
 */
export function jaegerBin(): string {
  return (
    process.env.TEST_ASSET_JAEGER ??
    execFileSync(join(HACK_DIR, 'build-go-tool.sh'), ['jaeger'], { stdio: ['ignore', 'pipe', 'inherit'] })
      .toString()
      .trim()
  );
}

/**
 * A throwaway Jaeger all-in-one on loopback: an OTLP/HTTP receiver, in-memory storage, and the
 * query service's HTTP API (what the UI reads). Random ports, so runs never clash.
 */
export class JaegerServer {
  private readonly processes = new Supervisor('epreuve-jaeger');
  otlpPort = 0;
  queryPort = 0;
  /** The receiver's credentials: without them an export is refused (401). */
  readonly auth = { username: 'epreuve', password: 'otlp-test-secret' };

  /** What the processes under test get as OTEL_EXPORTER_OTLP_ENDPOINT. */
  get otlpEndpoint(): string {
    return `http://127.0.0.1:${this.otlpPort}`;
  }

  /**
   * What the processes under test get as OTEL_EXPORTER_OTLP_HEADERS: the spec's `key=value` list,
   * values percent-encoded (the space of `Basic <credentials>` is `%20`).
   */
  get otlpHeaders(): string {
    const credentials = Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64');
    return `Authorization=${encodeURIComponent(`Basic ${credentials}`)}`;
  }

  get queryUrl(): string {
    return `http://127.0.0.1:${this.queryPort}`;
  }

  async start(timeoutMs = 60_000): Promise<this> {
    const [otlp, query, queryGrpc, health] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    this.otlpPort = otlp;
    this.queryPort = query;
    const local = (port: number) => `127.0.0.1:${port}`;
    // The all-in-one configuration cut to what the test needs: no other receivers, no sampling
    // endpoints, no self-metrics port (every listener on loopback and a random port); basic auth
    // on the receiver, as a hosted backend's API key, so exporters must send their headers.
    const config = {
      service: {
        extensions: ['jaeger_storage', 'jaeger_query', 'healthcheckv2', 'basicauth/otlp'],
        pipelines: {
          traces: { receivers: ['otlp'], processors: ['batch'], exporters: ['jaeger_storage_exporter'] },
        },
        telemetry: { metrics: { level: 'none' }, logs: { level: 'warn' } },
      },
      extensions: {
        jaeger_storage: { backends: { memstore: { memory: { max_traces: 10_000 } } } },
        jaeger_query: {
          storage: { traces: 'memstore' },
          http: { endpoint: local(query) },
          grpc: { endpoint: local(queryGrpc) },
        },
        healthcheckv2: { use_v2: true, http: { endpoint: local(health) } },
        'basicauth/otlp': { htpasswd: { inline: `${this.auth.username}:${this.auth.password}` } },
      },
      receivers: {
        otlp: {
          protocols: { http: { endpoint: local(otlp), auth: { authenticator: 'basicauth/otlp' } } },
        },
      },
      processors: { batch: { timeout: '100ms' } },
      exporters: { jaeger_storage_exporter: { trace_storage: 'memstore' } },
    };
    const file = join(this.processes.dir, 'jaeger.yaml');
    writeFileSync(file, stringify(config));
    this.processes.spawn('jaeger', jaegerBin(), ['--config', file]);
    await this.processes.waitHealthy(
      'jaeger',
      timeoutMs,
      async () => (await fetch(`${this.queryUrl}/api/services`)).ok,
    );
    return this;
  }

  private async get<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const res = await fetch(`${this.queryUrl}${path}?${new URLSearchParams(params)}`);
    const body = (await res.json()) as { data: T; errors?: Array<{ msg: string }> | null };
    if (!res.ok || body.errors?.length)
      throw new Error(`jaeger ${path}: ${res.status} ${JSON.stringify(body.errors)}`);
    return body.data;
  }

  services(): Promise<string[]> {
    return this.get<string[] | null>('/api/services').then((s) => s ?? []);
  }

  /** Traces of a service, as the UI's search finds them (`tags` is Jaeger's JSON map of span tags). */
  traces(q: { service: string; operation?: string; tags?: Record<string, string>; limit?: number }) {
    return this.get<JaegerTrace[]>('/api/traces', {
      service: q.service,
      ...(q.operation ? { operation: q.operation } : {}),
      ...(q.tags ? { tags: JSON.stringify(q.tags) } : {}),
      limit: String(q.limit ?? 100),
      lookback: '1h',
    });
  }

  trace(traceId: string): Promise<JaegerTrace | undefined> {
    return this.get<JaegerTrace[]>(`/api/traces/${traceId}`).then((t) => t[0]);
  }

  stop(): Promise<void> {
    return this.processes.stop();
  }
}
