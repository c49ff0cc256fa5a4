/**
 * Candidate session endpoint benchmark (make bench): requests/s and p99 latency of
 * GET /api/v1/candidate/session (token check, informer cache, credentials, snippets) against a
 * hello-world fastify route measured in the same run on the same machine, over real loopback
 * HTTP with autocannon in a second process. The API runs as production runs it: its own process
 * (api/src/main.ts), configured only through the environment as the chart does, logging every
 * request at info to stdout, and tracing every request to a real OTLP collector (Jaeger, built
 * from its Go module) with the SDK's default sampler. Goal: ≥ 30 % of hello world.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '@epreuve/kube';
import type autocannon from 'autocannon';
import Fastify from 'fastify';
import { candidateNamespace } from '../../crds/src/index.ts';
import { ControlPlane, freePort } from '../../hack/cluster/control-plane.ts';
import { markReady } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { JaegerServer } from '../harness/jaeger.ts';
import { eventually, installCrds, kube } from '../harness/kube.ts';
import { ratio } from './stats.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 10;
const GOAL = 0.3;

const AUTOCANNON = join(import.meta.dirname, '..', '..', 'node_modules', 'autocannon', 'autocannon.js');

/** Load from a second process, as a real client would be: the server keeps its event loop to itself. */
function run(url: string, headers: Record<string, string> = {}): Promise<autocannon.Result> {
  const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]);
  const args = [AUTOCANNON, '-c', String(CONNECTIONS), '-d', String(SECONDS), '-j', ...h, url];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`autocannon failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as autocannon.Result);
    });
  });
}

/**
 * The API process (node api/src/main.ts) with stdout and stderr going straight to a file, as a
 * container runtime writes a container's log: a reader that falls behind (the harness's
 * ApiProcess keeps output in memory) would block the API's synchronous log writes and measure
 * the reader instead.
 */
async function startApi(kubeconfig: string, env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'epreuve-bench-api-'));
  const logFile = join(dir, 'stdout.log');
  const fd = openSync(logFile, 'w');
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [join(import.meta.dirname, '..', '..', 'api', 'src', 'main.ts')],
    {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfig,
        EPREUVE_API_HOST: '127.0.0.1',
        EPREUVE_API_PORT: String(port),
        // Its own operations port: 9090 may be taken by another API on this machine.
        EPREUVE_METRICS_PORT: String(await freePort()),
        ...env,
      },
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 60_000; ; ) {
    if (child.exitCode !== null)
      throw new Error(`api exited:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline)
      throw new Error(`api not ready:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  let stopped: Promise<void> | undefined;
  return {
    url,
    log: () => readFileSync(logFile, 'utf8'),
    /** SIGTERM (the API flushes its spans), SIGKILL after 15 s. */
    stop(): Promise<void> {
      stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      });
      return stopped;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const cp = new ControlPlane();
await cp.start();
const jaeger = await new JaegerServer().start();
let api: Awaited<ReturnType<typeof startApi>> | undefined;
try {
  await installCrds(cp.kubeconfigPath);
  const client = kube(cp.kubeconfigPath);
  const KEY = 'epk_bench-key-0123456789abcdef';
  api = await startApi(cp.kubeconfigPath, {
    EPREUVE_LOG_LEVEL: 'info', // the chart's default: every request logged
    OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
    OTEL_EXPORTER_OTLP_HEADERS: jaeger.otlpHeaders,
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=bench',
    EPREUVE_API_KEYS: JSON.stringify([
      {
        name: 'bench',
        sha256: createHash('sha256').update(KEY).digest('hex'),
        role: 'recruiter',
        teams: ['bench'],
      },
    ]),
    // The rate limiter stays on (its cost is measured) with a limit high enough not to refuse.
    EPREUVE_RATE_LIMIT_PER_MINUTE: '100000000',
  });
  const auth = { authorization: `Bearer ${KEY}` };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api!.url}${path}`, {
      method,
      headers: { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, text: await res.text() };
  };
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
  await client.apply(
    {
      ...sample('data-engineer.yaml'),
      metadata: { name: 'data-engineer', namespace: 'bench' },
    } as KubeObject,
    { fieldManager: 'bench' },
  );
  await eventually(async () => {
    const created = await call('POST', '/api/v1/teams/bench/assessments', {
      name: 'bench-cand',
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Bench Mark', email: 'bench@example.com' },
    });
    // 201, or 409 when a retry follows a first attempt that went through.
    if (created.status !== 201 && created.status !== 409) throw new Error(created.text);
  });
  // Stand in for the operator: credentials Secrets and a Ready status with three sandboxes.
  const ns = candidateNamespace('bench', 'bench-cand');
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const [name, data] of [
    ['warehouse', { database: 'sandbox', username: 'candidate', password: 'p' }],
    ['events', { database: 'sandbox', username: 'candidate', password: 'p' }],
    ['source', { 'api-key': 'k' }],
  ] as const) {
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `${name}-credentials`, namespace: ns },
      stringData: data,
    } as KubeObject);
  }
  await markReady(client, 'bench', 'bench-cand', [
    {
      name: 'warehouse',
      kind: 'postgres',
      host: 'warehouse.x.svc',
      port: 5432,
      secretName: 'warehouse-credentials',
    },
    { name: 'events', kind: 'mongo', host: 'events.x.svc', port: 27017, secretName: 'events-credentials' },
    { name: 'source', kind: 'dataApi', host: 'source.x.svc', port: 8080, secretName: 'source-credentials' },
  ]);
  // The API's cache has the Ready status once the staff endpoint shows it (no candidate request
  // before that: refused ones count toward the address's brute-force budget).
  await eventually(async () => {
    const a = await call('GET', '/api/v1/teams/bench/assessments/bench-cand');
    if (!a.text.includes('"Ready"')) throw new Error(`not Ready in the API's cache yet: ${a.text}`);
  });
  const link = await call('POST', '/api/v1/teams/bench/assessments/bench-cand/link');
  if (link.status >= 300) throw new Error(`link: ${link.status} ${link.text}`);
  const { token } = JSON.parse(link.text) as { token: string };
  const session = { authorization: `Bearer ${token}` };
  // The API's caches have the Ready status and the Secrets once the session answers 200.
  await eventually(async () => {
    const res = await fetch(`${api!.url}/api/v1/candidate/session`, { headers: session });
    if (res.status !== 200) {
      const text = await res.text();
      console.error(`session not answering yet: ${res.status} ${text}`);
      throw new Error(text);
    }
  });

  const hello = Fastify();
  hello.get('/', async () => ({ hello: 'world' }));
  await hello.listen({ host: '127.0.0.1', port: 0 });
  const helloUrl = `http://127.0.0.1:${(hello.server.address() as { port: number }).port}/`;

  const base = await run(helloUrl);
  const measured = await run(`${api.url}/api/v1/candidate/session`, session);
  const logged = api
    .log()
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('/api/v1/candidate/session')).length;
  await hello.close();
  if (measured.non2xx > 0) throw new Error(`${measured.non2xx} session requests failed`);
  // What "production" means here, checked rather than assumed: requests were logged and traced.
  if (logged === 0) throw new Error('the API logged nothing under load: not the production configuration');
  await api.stop(); // flushes its spans
  const traced = await eventually(async () => {
    const found = (await jaeger.traces({ service: 'epreuve-api', limit: 1000 })).filter((t) =>
      t.spans.some((sp) => sp.operationName.includes('/candidate/session')),
    );
    if (!found.length) throw new Error('no trace of a session request in Jaeger yet');
    return found.length;
  }, 30_000);
  const r = measured.requests.average / base.requests.average;
  console.log(
    `\ncandidate session benchmark: ${CONNECTIONS} connections, ${SECONDS} s each, loopback HTTP, autocannon in a second process`,
  );
  console.log(
    `  hello-world fastify : ${base.requests.average.toFixed(0)} req/s, p99 ${base.latency.p99} ms`,
  );
  console.log(
    `  GET candidate/session: ${measured.requests.average.toFixed(0)} req/s, p99 ${measured.latency.p99} ms, ${measured.non2xx} non-2xx (API in its own process, logging at info: ${logged} session request log lines written to its stdout file; tracing to Jaeger: ${traced} session traces found)`,
  );
  console.log(
    `  ratio               : session = ${ratio(r)} of hello world — goal ≥ ${ratio(GOAL)}: ${r >= GOAL ? 'met' : `MISSED by ${ratio(GOAL - r)}`}`,
  );
} finally {
  await api?.stop();
  api?.remove();
  await jaeger.stop();
  await cp.stop();
}
process.exit(0);
