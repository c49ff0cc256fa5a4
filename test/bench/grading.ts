/**
 * Grading latency benchmark (make bench): a passing answer submitted end to end through the API —
 * `POST /api/v1/candidate/tasks/:task/submissions` on the real API process (`node api/src/main.ts`,
 * JSON logs at info, OpenTelemetry tracing on and exporting over OTLP/HTTP, as the chart runs it),
 * which records a Submission in the API server, relays the answer to the grade server (the
 * candidate's data and two hidden variants graded, JSON logs at info) and writes the grade — against
 * the same query run directly with `pg` on the same sandbox in the same run (connect, query, close,
 * as a plain client would). Also shown: the grade server alone, to split the overhead between the
 * API's relay and the grader. Goal: p95 overhead of the API path ≤ 150 ms.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { GRADER } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import pg from 'pg';
import pino from 'pino';
import { sha256 } from '../../api/src/services/staff-auth.ts';
import { candidateNamespace, DB_CREDENTIAL_KEYS as KEYS } from '../../crds/src/index.ts';
import { ControlPlane } from '../../hack/cluster/control-plane.ts';
import { PostgresServer } from '../../hack/cluster/postgres.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { SQL_EXERCISES } from '../../sandboxes/src/exercises/sql.ts';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';
import { seedHiddenVariants, seedPostgres } from '../../sandboxes/src/seeder/postgres.ts';
import { markReady } from '../harness/api.ts';
import { ApiProcess } from '../harness/api-process.ts';
import { sample } from '../harness/fixtures.ts';
import { credentialsDir } from '../harness/grader.ts';
import { eventually, installCrds, kube } from '../harness/kube.ts';
import { ms, percentile } from './stats.ts';

const WARMUP = 3;
// One assessment allows 100 attempts per task (grading.maxAttempts' most).
const ROUNDS = Math.min(Number(process.env.BENCH_ROUNDS ?? 40), 100 - WARMUP);
const VARIANTS = 2;
const TEAM = 'bench';
const NAME = 'bench-grading';
const KEY = 'epk_bench-grading-key-0123456789';
const TOKEN = 'bench-grader-token-0123456789abcdef';
const TASK = 'rank-customers-by-country';
const exercise = SQL_EXERCISES.find((e) => e.id === TASK)!;

/** An OTLP/HTTP endpoint that accepts every export: the API's spans leave the process as in production. */
let spansExported = 0;
const otlp = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url === '/v1/traces') spansExported++;
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
await new Promise<void>((r) => otlp.listen(0, '127.0.0.1', r));

const cp = new ControlPlane();
const server = new PostgresServer();
await Promise.all([cp.start(), server.start()]);
let api: ApiProcess | undefined;
let grader: Awaited<ReturnType<typeof buildGradeServer>> | undefined;
try {
  await installCrds(cp.kubeconfigPath);
  const client = kube(cp.kubeconfigPath);

  // The sandbox: retail@1 (standard) and its hidden variants, as the seed Job loads them.
  const admin = new pg.Client(server.connection);
  await admin.connect();
  await admin.query('CREATE DATABASE sandbox');
  await admin.end();
  const users = {
    candidate: { username: 'candidate', password: 'candidate-pw' },
    grader: { username: 'grader', password: 'grader-pw' },
  };
  const dataset = resolveDataset('retail@1');
  const seeded = Date.now();
  await seedPostgres({ ...server.connection, database: 'sandbox' }, { dataset, size: 'standard', ...users });
  await seedHiddenVariants(
    { ...server.connection, database: 'sandbox' },
    { dataset, count: VARIANTS, ...users },
  );
  console.log(`seeded retail@1 (standard) and ${VARIANTS} hidden variants in ${Date.now() - seeded} ms`);

  // The candidate namespace's grade server, as the operator runs it (production logging).
  grader = await buildGradeServer({
    plan: [
      {
        name: 'warehouse',
        kind: 'postgres',
        host: '127.0.0.1',
        port: server.port,
        credentials: credentialsDir({
          [KEYS.database]: 'sandbox',
          [KEYS.graderUsername]: 'grader',
          [KEYS.graderPassword]: 'grader-pw',
        }),
        hiddenVariants: VARIANTS,
      },
    ],
    token: () => TOKEN,
    log: pino({ level: 'info' }, pino.destination('/dev/null')),
  });
  await grader.listen({ host: '127.0.0.1', port: 0 });
  const graderUrl = `http://127.0.0.1:${(grader.server.address() as AddressInfo).port}`;

  api = await new ApiProcess(cp.kubeconfigPath, {
    EPREUVE_API_KEYS: JSON.stringify([
      { name: 'bench', sha256: sha256(KEY), role: 'recruiter', teams: [TEAM] },
    ]),
    EPREUVE_GRADER_URL: graderUrl,
    EPREUVE_LOG_LEVEL: 'info',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(otlp.address() as AddressInfo).port}`,
    OTEL_SERVICE_NAME: 'epreuve-api',
    // The limits stay on (their cost is measured) but high enough not to refuse.
    EPREUVE_RATE_LIMIT_PER_MINUTE: '1000000',
    EPREUVE_RATE_LIMIT_WRITES_PER_MINUTE: '1000000',
  }).start();
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${api!.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  // A team, the sample template with room for every round, an assessment; the operator stood in for.
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: TEAM } });
  const template = sample<KubeObject & { spec: Record<string, unknown> }>('data-engineer.yaml');
  await client.apply(
    {
      ...template,
      metadata: { name: 'data-engineer', namespace: TEAM },
      spec: {
        ...template.spec,
        grading: { hiddenVariants: VARIANTS, maxAttempts: 100, maxSubmissions: 1000 },
      },
    } as KubeObject,
    { fieldManager: 'bench' },
  );
  const created = await eventually(async () => {
    const res = await call('POST', `/teams/${TEAM}/assessments`, KEY, {
      name: NAME,
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Bench Mark', email: 'bench@example.com' },
    });
    if (res.status !== 201) throw new Error(JSON.stringify(res.body));
    return res;
  });
  const ns = candidateNamespace(TEAM, created.body.name ?? NAME);
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'warehouse-credentials', namespace: ns },
    stringData: { [KEYS.database]: 'sandbox', [KEYS.username]: 'candidate', [KEYS.password]: 'candidate-pw' },
  } as KubeObject);
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: GRADER.secretName, namespace: ns },
    stringData: { [GRADER.tokenKey]: TOKEN },
  } as KubeObject);
  await markReady(client, TEAM, NAME, [
    {
      name: 'warehouse',
      kind: 'postgres',
      host: '127.0.0.1',
      port: server.port,
      secretName: 'warehouse-credentials',
    },
  ]);
  const link = await eventually(async () => {
    const res = await call('POST', `/teams/${TEAM}/assessments/${NAME}/link`, KEY);
    if (res.status !== 200) throw new Error(JSON.stringify(res.body));
    const session = await call('GET', '/candidate/session', res.body.token);
    if (session.body.phase !== 'Ready') throw new Error(`phase ${session.body.phase}`);
    return res.body.token as string;
  });

  const viaApi = async () => {
    const t = performance.now();
    const res = await call('POST', `/candidate/tasks/${TASK}/submissions`, link, {
      answer: exercise.reference,
    });
    if (res.status !== 201 || !res.body.pass) throw new Error(`not a pass: ${JSON.stringify(res.body)}`);
    return performance.now() - t;
  };
  const graderBody = JSON.stringify({
    sandbox: 'warehouse',
    kind: 'sql',
    reference: exercise.reference,
    options: exercise.grader,
    answer: exercise.reference,
  });
  const viaGrader = async () => {
    const t = performance.now();
    const res = await fetch(`${graderUrl}/v1/grade`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: graderBody,
    });
    const out = (await res.json()) as { pass?: boolean };
    if (!out.pass) throw new Error(`the reference did not pass: ${JSON.stringify(out)}`);
    return performance.now() - t;
  };
  const direct = async () => {
    const t = performance.now();
    const c = new pg.Client({
      ...server.connection,
      database: 'sandbox',
      user: 'grader',
      password: 'grader-pw',
    });
    await c.connect();
    await c.query(exercise.reference);
    await c.end();
    return performance.now() - t;
  };

  // Warm every path (reference results cached, connections and JIT warm), then alternate rounds.
  for (let i = 0; i < WARMUP; i++) {
    await viaApi();
    await viaGrader();
    await direct();
  }
  const loadBefore = loadavg()[0]!.toFixed(1);
  const a: number[] = [];
  const g: number[] = [];
  const d: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    a.push(await viaApi());
    g.push(await viaGrader());
    d.push(await direct());
  }
  const p = (xs: number[], q: number) => percentile(xs, q);
  const overhead95 = p(a, 95) - p(d, 95);
  console.log(
    `grading a passing answer, ${ROUNDS} rounds (candidate data + ${VARIANTS} hidden variants; API logs and traces on; load ${loadBefore} → ${loadavg()[0]!.toFixed(1)}):`,
  );
  console.log(`  through the API  p50 ${ms(p(a, 50))}  p95 ${ms(p(a, 95))}`);
  console.log(`  grade server     p50 ${ms(p(g, 50))}  p95 ${ms(p(g, 95))}`);
  console.log(`  direct pg        p50 ${ms(p(d, 50))}  p95 ${ms(p(d, 95))}`);
  console.log(
    `  API path: ratio p50 ${(p(a, 50) / p(d, 50)).toFixed(2)}×, p95 ${(p(a, 95) / p(d, 95)).toFixed(2)}×; overhead p50 ${ms(p(a, 50) - p(d, 50))}, p95 ${ms(overhead95)} (goal ≤ 150 ms): ${overhead95 <= 150 ? 'met' : 'NOT met'}`,
  );
  console.log(
    `  of which the grade server: p95 overhead ${ms(p(g, 95) - p(d, 95))}; the API's relay and Submission writes: ${ms(p(a, 95) - p(g, 95))}`,
  );
  // Let the batch span processor flush once, to show spans really leave the API.
  await new Promise((r) => setTimeout(r, 6000));
  console.log(`  OTLP exports received from the API: ${spansExported}`);
} finally {
  await api?.stop();
  await grader?.close();
  await Promise.allSettled([server.stop(), cp.stop()]);
  otlp.close();
}
