import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect, createSecureContext } from 'node:tls';
import { createLogger } from '@epreuve/kube';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { wildcardCertificate } from '../../test/harness/tls.ts';
import { SandboxGateway } from './server.ts';

/**
 * A span per candidate connection, and the gateway's log lines for it carry that span's ids:
 * the gateway on loopback with a throwaway certificate, an echo server as the sandbox.
 */
const DOMAIN = 'sandbox.test';
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
trace.setGlobalTracerProvider(provider);

const dir = mkdtempSync(join(tmpdir(), 'epreuve-gateway-tracing-'));
const lines: Array<Record<string, unknown>> = [];
let gateway: SandboxGateway;
let echo: Server;
let port: number;

beforeAll(async () => {
  const { key, cert } = wildcardCertificate(DOMAIN, dir);
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as { port: number }).port;
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().trim().split('\n')) lines.push(JSON.parse(l));
      cb();
    },
  });
  gateway = new SandboxGateway({
    domain: DOMAIN,
    tls: createSecureContext({ key: readFileSync(key), cert: readFileSync(cert) }),
    resolve: (label) =>
      label === 'warehouse-abc12'
        ? {
            route: {
              assessment: 'hiring/jane',
              sandbox: 'warehouse',
              kind: 'postgres',
              host: '127.0.0.1',
              port: echoPort,
            },
          }
        : { refused: 'this assessment has ended' },
    maxConnections: 100,
    maxConnectionsPerClient: 10,
    maxConnectionsPerSandbox: 5,
    maxPendingPerSandbox: 5,
    maxPendingTotalPerSandbox: 20,
    idleTimeoutMs: 10_000,
    handshakeTimeoutMs: 5_000,
    log: createLogger('info', 'gateway-test', { destination }),
    registry: new Registry(),
  });
  port = await gateway.listen(0, '127.0.0.1');
});
afterAll(async () => {
  await gateway.close();
  echo.close();
  await provider.shutdown();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  exporter.reset();
  lines.length = 0;
});

/** Opens a TLS connection for `label`, sends `payload`, and resolves with what came back once closed. */
function exchange(label: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: '127.0.0.1',
      port,
      servername: `${label}.${DOMAIN}`,
      rejectUnauthorized: false,
    });
    let got = '';
    s.on('secureConnect', () => s.write(payload));
    s.on('data', (d) => {
      got += d.toString();
      if (got === payload) s.end();
    });
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
}

const settled = async (name: string) => {
  for (let i = 0; i < 100 && !lines.some((l) => l.msg === name); i++)
    await new Promise((r) => setTimeout(r, 10));
  return exporter.getFinishedSpans();
};

describe('gateway connection spans', () => {
  it('span a forwarded connection, with its route and bytes; its log line carries the span’s ids', async () => {
    expect(await exchange('warehouse-abc12', 'hello sandbox')).toBe('hello sandbox');
    const [span] = await settled('sandbox connection closed');
    expect(span?.name).toBe('gateway connection');
    expect(span?.attributes).toMatchObject({
      'epreuve.gateway.opening': 'tls',
      'epreuve.gateway.label': 'warehouse-abc12',
      'epreuve.assessment': 'hiring/jane',
      'epreuve.sandbox': 'warehouse',
      'epreuve.gateway.result': 'closed',
      'epreuve.gateway.bytes_up': 13,
      'epreuve.gateway.bytes_down': 13,
    });
    expect(span?.status.code).toBe(0);
    const line = lines.find((l) => l.msg === 'sandbox connection closed');
    expect(line).toMatchObject({
      trace_id: span!.spanContext().traceId,
      span_id: span!.spanContext().spanId,
    });
  });

  it('span a refused connection as an error with the reason, logged with its ids', async () => {
    await exchange('other-zzz99', 'x');
    const spans = await settled('sandbox connection refused');
    expect(spans).toHaveLength(1);
    expect(spans[0]!.status).toMatchObject({ code: 2, message: 'this assessment has ended' });
    expect(spans[0]!.attributes['epreuve.gateway.result']).toBe('refused');
    expect(lines.find((l) => l.msg === 'sandbox connection refused')).toMatchObject({
      trace_id: spans[0]!.spanContext().traceId,
    });
  });
});
