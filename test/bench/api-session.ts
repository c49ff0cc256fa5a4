/**
 * Candidate session endpoint benchmark (make bench): requests/s and p99 latency of
 * GET /api/v1/candidate/session (token check, informer cache, credentials, snippets) against
 * hello-world fastify, over real loopback HTTP, measured in the same run under the same load
 * generator. The goal (≥ 30 %) is judged against hello world under the same production conditions
 * as the API, logging and tracing on (the README's rule for every benchmark's baseline):
 * hello-server.ts, with the API's own logger, tracing and observability plugin, so the ratio is
 * the cost of the API itself; a bare hello world (no logging, no tracing) is measured too and its
 * ratio printed for reference. Fair by construction:
 *   - every server is a process of its own (the API is api/src/main.ts, configured only through
 *     the environment as the chart does), and the load generator is another (autocannon,
 *     ${CONNECTIONS} connections), so no server shares an event loop with its client;
 *   - the runs alternate (bare hello, production hello, session, … BENCH_ROUNDS rounds of
 *     BENCH_SECONDS), so a change in the machine's load (it is shared) falls on all, and a ratio is
 *     the mean of the rounds' ratios;
 *   - each run reports the CPU seconds of the server, of the load generator and of Jaeger, read
 *     from /proc: a generator near one full core means it, not the server, set the pace.
 * Production here: logging every request at info to stdout (a file, as a container runtime writes
 * it), tracing every request (the chart sets no sampler: the SDK's default, parent-based
 * always-on; its default batch span processor) to a real OTLP collector (Jaeger, built from its Go
 * module), which runs during every run; its CPU is printed. Besides the throughput ratios, the
 * ratios of requests per server CPU-second tell how much of a gap is the servers' own work rather
 * than the machine's other load. BENCH_OTEL=off runs both production servers without tracing
 * (diagnosis only: not the production configuration, and the verdict says so).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '@epreuve/kube';
import type autocannon from 'autocannon';
import { candidateNamespace } from '../../crds/src/index.ts';
import { ControlPlane, freePort } from '../../hack/cluster/control-plane.ts';
import { markReady } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { JaegerServer } from '../harness/jaeger.ts';
import { eventually, installCrds, kube } from '../harness/kube.ts';
import { ratio } from './stats.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const TRACING = process.env.BENCH_OTEL !== 'off';
const CONNECTIONS = 10;
const GOAL = 0.3;
const ROOT = join(import.meta.dirname, '..', '..');
const CLK_TCK = 100; // USER_HZ: /proc/<pid>/stat counts in 1/100 s on Linux

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  // The fields after the command (which may hold spaces): utime is the 14th, stime the 15th.
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** A child process of this one by its command name (/proc/<pid>/stat), if there is one. */
function childNamed(name: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const [comm, rest] = [stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), stat.split(') ')[1]!];
      if (comm === name && Number(rest.split(' ')[1]) === process.pid) return Number(d);
    } catch {} // exited meanwhile
  }
  return undefined;
}

/**
 * The load generator: autocannon in a process of its own, reporting its result and the CPU it
 * used (process.cpuUsage), so the report can tell whether it kept up.
 */
function load(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ result: autocannon.Result; cpu: number }> {
  const script = `
    import autocannon from 'autocannon';
    const opts = JSON.parse(process.argv[1]);
    const result = await autocannon(opts);
    const { user, system } = process.cpuUsage();
    process.stdout.write(JSON.stringify({ result, cpu: (user + system) / 1e6 }));`;
  const opts = { url, headers, connections: CONNECTIONS, duration: SECONDS };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(opts)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b;
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b;
    });
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}: ${err}`));
      else resolve(JSON.parse(out));
    });
  });
}

/** A bare hello-world fastify server in a process of its own, as the API is: no logging, no tracing. */
async function startHello(): Promise<{ url: string; pid: number; stop(): void }> {
  const port = await freePort();
  const script = `
    import Fastify from 'fastify';
    const app = Fastify();
    app.get('/', async () => ({ hello: 'world' }));
    await app.listen({ host: '127.0.0.1', port: Number(process.argv[1]) });
    console.log('listening');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`hello-world server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/`, pid: child.pid!, stop: () => child.kill('SIGKILL') };
}

/**
 * A server process (node `args`) with stdout and stderr going straight to a file, as a container
 * runtime writes a container's log: a reader that falls behind (the harness's ApiProcess keeps
 * output in memory) would block the server's log writes and measure the reader instead. Ready once
 * `readyUrl` answers 2xx.
 */
async function startLogged(what: string, args: string[], env: NodeJS.ProcessEnv, readyUrl: string) {
  const dir = mkdtempSync(join(tmpdir(), `epreuve-bench-${what}-`));
  const logFile = join(dir, 'stdout.log');
  const fd = openSync(logFile, 'w');
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const log = () => readFileSync(logFile, 'utf8');
  for (const deadline = Date.now() + 60_000; ; ) {
    if (child.exitCode !== null) throw new Error(`${what} exited:\n${log().slice(-3000)}`);
    if (
      await fetch(readyUrl).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) throw new Error(`${what} not ready:\n${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  let stopped: Promise<void> | undefined;
  return {
    pid: child.pid!,
    log,
    /** SIGTERM (the server flushes its spans), SIGKILL after 15 s. */
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

/**
 * Hello world under the API's production logging and tracing (hello-server.ts), logging to a file
 * as the API does: the baseline the goal is judged against.
 */
async function startProductionHello(env: Record<string, string>) {
  const url = `http://127.0.0.1:${await freePort()}/`;
  const args = [join(import.meta.dirname, 'hello-server.ts'), new URL(url).port];
  return { url, ...(await startLogged('hello', args, { ...process.env, ...env }, url)) };
}

/** The API process (node api/src/main.ts), configured only through the environment. */
async function startApi(kubeconfig: string, env: Record<string, string>) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    // BENCH_API_NODE_ARGS: e.g. --cpu-prof --cpu-prof-dir=/tmp/prof, to see where the time goes.
    ...(process.env.BENCH_API_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
    join(ROOT, 'api', 'src', 'main.ts'),
  ];
  const apiEnv = {
    ...process.env,
    KUBECONFIG: kubeconfig,
    EPREUVE_API_HOST: '127.0.0.1',
    EPREUVE_API_PORT: String(port),
    // Its own operations port: 9090 may be taken by another API on this machine.
    EPREUVE_METRICS_PORT: String(await freePort()),
    ...env,
  };
  return { url, ...(await startLogged('api', args, apiEnv, `${url}/readyz`)) };
}

const cp = new ControlPlane();
await cp.start();
const jaeger = await new JaegerServer().start();
let api: Awaited<ReturnType<typeof startApi>> | undefined;
let helloProduction: Awaited<ReturnType<typeof startProductionHello>> | undefined;
// What production runs with, for the API and the production hello world alike.
const production = {
  EPREUVE_LOG_LEVEL: 'info', // the chart's default: every request logged
  // The chart's variables when otel.endpoint is set (no sampler, no batch settings: the SDK's defaults).
  ...(TRACING && {
    OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
    OTEL_EXPORTER_OTLP_HEADERS: jaeger.otlpHeaders,
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=bench',
  }),
};
try {
  await installCrds(cp.kubeconfigPath);
  const client = kube(cp.kubeconfigPath);
  const KEY = 'epk_bench-key-0123456789abcdef';
  api = await startApi(cp.kubeconfigPath, {
    ...production,
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

  const hello = await startHello();
  helloProduction = await startProductionHello(production);
  const jaegerPid = childNamed('jaeger');
  type Run = {
    rps: number;
    p99: number;
    non2xx: number;
    server: number;
    generator: number;
    jaeger: number;
    load1: number;
  };
  const measure = async (pid: number, url: string, headers?: Record<string, string>): Promise<Run> => {
    const load1 = loadavg()[0]!;
    const [s0, j0] = [cpuSeconds(pid), jaegerPid ? cpuSeconds(jaegerPid) : 0];
    const { result, cpu } = await load(url, headers);
    const [s1, j1] = [cpuSeconds(pid), jaegerPid ? cpuSeconds(jaegerPid) : 0];
    return {
      rps: result.requests.average,
      p99: result.latency.p99,
      non2xx: result.non2xx + result.errors,
      server: s1 - s0,
      generator: cpu,
      jaeger: j1 - j0,
      load1,
    };
  };
  /** A response's size on the wire (status line and headers, body): what each request writes. */
  const size = async (url: string, headers?: Record<string, string>) => {
    const res = await fetch(url, { headers });
    const body = (await res.arrayBuffer()).byteLength;
    let head = 'HTTP/1.1 200 OK\r\n'.length + 2;
    res.headers.forEach((v, k) => {
      head += k.length + v.length + 4;
    });
    return `${head} + ${body} bytes`;
  };
  const sizes = {
    hello: await size(hello.url),
    session: await size(`${api.url}/api/v1/candidate/session`, session),
  };
  const tracesOf = (service: string, operation: string) =>
    eventually(async () => {
      const found = (await jaeger.traces({ service, limit: 1000 })).filter((t) =>
        t.spans.some((sp) => sp.operationName === operation),
      );
      if (!found.length) throw new Error(`no trace of ${service}'s ${operation} in Jaeger yet`);
      return found.length;
    }, 30_000);
  type Round = { bare: Run; hello: Run; session: Run };
  const rounds: Round[] = [];
  let helloTraced = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const bare = await measure(hello.pid, hello.url);
    const h = await measure(helloProduction.pid, helloProduction.url);
    // Checked now: Jaeger keeps the last 10 000 traces, and the session's rounds push these out.
    if (i === 0 && TRACING) helloTraced = await tracesOf('hello-world', 'GET /');
    const m = await measure(api.pid, `${api.url}/api/v1/candidate/session`, session);
    if (m.non2xx > 0) throw new Error(`${m.non2xx} session requests failed or were refused`);
    rounds.push({ bare, hello: h, session: m });
  }
  hello.stop();
  // What "production" means here, checked rather than assumed: requests were logged and traced,
  // by the API and by the hello world it is judged against.
  const linesOf = (log: string, path: string) =>
    log.split('\n').filter((l) => l.startsWith('{') && l.includes(`"url":"${path}`)).length;
  const logged = linesOf(api.log(), '/api/v1/candidate/session');
  const helloLogged = linesOf(helloProduction.log(), '/');
  if (logged === 0 || helloLogged === 0)
    throw new Error(
      `request lines: API ${logged}, hello world ${helloLogged}: not the production configuration`,
    );
  await api.stop(); // flushes its spans
  await helloProduction.stop();
  const traced = TRACING ? await tracesOf('epreuve-api', 'GET /api/v1/candidate/session') : 0;
  const line = (r: Run) =>
    `${r.rps.toFixed(0).padStart(6)} req/s, p99 ${String(r.p99).padStart(3)} ms; CPU s: server ${r.server.toFixed(1)}, generator ${r.generator.toFixed(1)}, jaeger ${r.jaeger.toFixed(1)}; load ${r.load1.toFixed(1)}`;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ratios = (base: 'hello' | 'bare') => rounds.map((r) => r.session.rps / r[base].rps);
  // Requests served per CPU-second of the server: what each request costs, whatever else runs.
  const efficiency = (base: 'hello' | 'bare') =>
    rounds.map((r) => r.session.rps / r.session.server / (r[base].rps / r[base].server));
  const judged = ratios('hello');
  const r = mean(judged);
  console.log(
    `\ncandidate session benchmark: ${ROUNDS} rounds of ${SECONDS} s per server, ${CONNECTIONS} connections, loopback HTTP; servers and load generator (autocannon) in processes of their own`,
  );
  rounds.forEach((x, i) => {
    console.log(`  round ${i + 1} bare hello world       : ${line(x.bare)}`);
    console.log(`  round ${i + 1} hello world, production: ${line(x.hello)}`);
    console.log(`  round ${i + 1} session, production    : ${line(x.session)}`);
  });
  console.log(`  response (headers + body): hello world ${sizes.hello}, session ${sizes.session}`);
  console.log(
    `  production: logging at info (request lines written to stdout files: API ${logged}, hello world ${helloLogged}); ${TRACING ? `tracing to Jaeger (traces found: API ${traced}, hello world ${helloTraced})` : 'TRACING OFF (BENCH_OTEL=off): not the production configuration'}`,
  );
  for (const [base, what] of [
    ['bare', 'bare hello world (no logging, no tracing; for reference)'],
    ['hello', 'hello world under production logging and tracing'],
  ] as const) {
    const e = efficiency(base);
    console.log(`  per CPU-second vs ${what}: ${ratio(mean(e))} (rounds: ${e.map(ratio).join(', ')})`);
  }
  const bare = ratios('bare');
  console.log(
    `  ratio vs bare hello world (for reference): session = ${ratio(mean(bare))} (rounds: ${bare.map(ratio).join(', ')})`,
  );
  console.log(
    `  ratio vs hello world under production logging and tracing (the goal's baseline): session = ${ratio(r)} (rounds: ${judged.map(ratio).join(', ')}) — goal ≥ ${ratio(GOAL)}: ${!TRACING ? 'not judged (tracing off)' : r >= GOAL ? 'met' : `MISSED by ${ratio(GOAL - r)}`}`,
  );
} finally {
  await api?.stop();
  api?.remove();
  await helloProduction?.stop();
  helloProduction?.remove();
  await jaeger.stop();
  await cp.stop();
}
process.exit(0);
