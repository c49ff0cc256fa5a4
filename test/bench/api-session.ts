/**
 * Candidate session endpoint benchmark (make bench): requests/s and p99 latency of
 * GET /api/v1/candidate/session (token check, informer cache, credentials, snippets) against a
 * hello-world fastify route measured in the same run on the same machine, over real loopback
 * HTTP with autocannon. Goal: the session endpoint reaches ≥ 20 % of hello world.
 */

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { KubeObject } from '@epreuve/kube';
import type autocannon from 'autocannon';
import Fastify from 'fastify';
import { candidateNamespace } from '../../crds/src/index.ts';
import { ControlPlane } from '../../hack/cluster/control-plane.ts';
import { markReady, startApi } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { eventually, installCrds } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';
import { ratio } from './stats.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 10;

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

const cp = new ControlPlane();
await cp.start();
const issuer = await new TestIssuer().start();
try {
  await installCrds(cp.kubeconfigPath);
  const KEY = 'epk_bench-key-0123456789abcdef';
  // The rate limiter stays on (its cost is measured) with a limit high enough not to refuse.
  const api = await startApi(cp.kubeconfigPath, {
    issuer,
    apiKey: KEY,
    apiKeyTeams: ['bench'],
    env: { EPREUVE_RATE_LIMIT_PER_MINUTE: '100000000' },
  });
  const { client, app, store } = api;
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
  await client.apply(
    {
      ...sample('data-engineer.yaml'),
      metadata: { name: 'data-engineer', namespace: 'bench' },
    } as KubeObject,
    { fieldManager: 'bench' },
  );
  await eventually(async () => {
    if (!store.template('bench', 'data-engineer')) throw new Error('template not cached yet');
  });
  const auth = { authorization: `Bearer ${KEY}` };
  const created = await app.inject({
    method: 'POST',
    url: '/api/v1/teams/bench/assessments',
    headers: auth,
    payload: {
      name: 'bench-cand',
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Bench Mark', email: 'bench@example.com' },
    },
  });
  if (created.statusCode !== 201) throw new Error(created.body);
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
  await eventually(async () => {
    if (store.assessments.get('bench/bench-cand')?.status?.phase !== 'Ready')
      throw new Error('not cached yet');
  });
  const link = JSON.parse(
    (
      await app.inject({
        method: 'POST',
        url: '/api/v1/teams/bench/assessments/bench-cand/link',
        headers: auth,
      })
    ).body,
  ) as { token: string };
  await eventually(async () => {
    const res = await app.inject({
      url: '/api/v1/candidate/session',
      headers: { authorization: `Bearer ${link.token}` },
    });
    if (res.statusCode !== 200) throw new Error(res.body);
  });
  if (process.env.BENCH_PROFILE) {
    // In-process loop for a CPU profile of the handler path (node --cpu-prof).
    const t0 = performance.now();
    for (let i = 0; i < 20000; i++)
      await app.inject({
        url: '/api/v1/candidate/session',
        headers: { authorization: `Bearer ${link.token}` },
      });
    console.log(`inject loop: ${(((performance.now() - t0) / 20000) * 1000).toFixed(0)} µs/request`);
  }
  await app.listen({ host: '127.0.0.1', port: 0 });
  const apiUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;

  const hello = Fastify();
  hello.get('/', async () => ({ hello: 'world' }));
  await hello.listen({ host: '127.0.0.1', port: 0 });
  const helloUrl = `http://127.0.0.1:${(hello.server.address() as { port: number }).port}/`;

  const base = await run(helloUrl);
  const session = await run(`${apiUrl}/api/v1/candidate/session`, { authorization: `Bearer ${link.token}` });
  await hello.close();
  await api.stop();
  if (session.non2xx > 0) throw new Error(`${session.non2xx} session requests failed`);
  console.log(
    `\ncandidate session benchmark: ${CONNECTIONS} connections, ${SECONDS} s each, loopback HTTP, autocannon in a second process`,
  );
  console.log(
    `  hello-world fastify : ${base.requests.average.toFixed(0)} req/s, p99 ${base.latency.p99} ms`,
  );
  console.log(
    `  GET candidate/session: ${session.requests.average.toFixed(0)} req/s, p99 ${session.latency.p99} ms, ${session.non2xx} non-2xx`,
  );
  console.log(
    `  ratio               : session = ${ratio(session.requests.average / base.requests.average)} of hello world (goal ≥ 20 %)`,
  );
} finally {
  await issuer.stop();
  await cp.stop();
}
process.exit(0);
