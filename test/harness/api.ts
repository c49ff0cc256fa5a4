import { candidateNamespace, KINDS } from '@epreuve/crds';
import { Informer, type KubeClient, type KubeObject } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import pino from 'pino';
import { buildApp } from '../../api/src/app.ts';
import { loadApiConfig } from '../../api/src/config.ts';
import { type A, AssessmentStore, type T } from '../../api/src/services/assessments.ts';
import { LinkSigner } from '../../api/src/services/links.ts';
import { sha256 } from '../../api/src/services/staff-auth.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { seedPostgres } from '../../sandboxes/src/seeder/postgres.ts';
import { eventually, kube } from './kube.ts';
import type { TestIssuer } from './oidc.ts';
import { type Endpoint, writeOperatorReadyStatus } from './operator-status.ts';

/**
 * The API wired as main.ts wires it — informers on the real API server, the real app — with a
 * test OIDC issuer and one automation key, for the API and browser suites.
 */
export async function startApi(
  kubeconfig: string,
  o: {
    issuer: TestIssuer;
    apiKey: string;
    apiKeyTeams: string[];
    env?: Record<string, string>;
    logLines?: string[];
  },
) {
  const client = kube(kubeconfig);
  const abort = new AbortController();
  const config = loadApiConfig({
    EPREUVE_OIDC_ISSUER: o.issuer.issuer,
    EPREUVE_OIDC_JWKS_URL: o.issuer.jwksUrl,
    EPREUVE_API_KEYS: JSON.stringify([
      { name: 'ci', sha256: sha256(o.apiKey), role: 'recruiter', teams: o.apiKeyTeams },
    ]),
    EPREUVE_PUBLIC_URL: 'https://epreuve.example.com',
    ...o.env,
  });
  const log = pino({ level: 'silent' });
  // Collects the app's JSON log lines when asked, e.g. to check the audit trail.
  const appLogger = o.logLines
    ? pino({ level: 'info' }, { write: (line: string) => void o.logLines!.push(line) })
    : false;
  const assessments = new Informer<A>(client, { type: KINDS.Assessment, log });
  const templates = new Informer<T>(client, { type: KINDS.AssessmentTemplate, log });
  for (const inf of [assessments, templates]) void inf.run(abort.signal);
  await Promise.all([assessments.waitForSync(), templates.waitForSync()]);
  const store = new AssessmentStore(client, assessments, templates);
  const app: FastifyInstance = await buildApp({
    config,
    client,
    store,
    links: await LinkSigner.ephemeral(),
    logger: appLogger,
  });
  return {
    app,
    store,
    client,
    async stop() {
      await app.close();
      abort.abort();
    },
  };
}

/**
 * Stands in for the operator and the kubelet: seeds a database on the test PostgreSQL, creates
 * the candidate namespace and the sandbox's credentials Secret, and writes the Ready status the
 * operator would (its own `nextStatus`), with the `warehouse` sandbox pointed at that database.
 */
export async function standInReadyWarehouse(
  kubeconfig: string,
  server: pg.ClientConfig & { port: number },
  team: string,
  name: string,
) {
  const client = kube(kubeconfig);
  const db = `sandbox_${team.replace(/-/g, '_')}_${name.replace(/-/g, '_')}`;
  const admin = new pg.Client({ ...server, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.end();
  const grader = { username: 'grader', password: `grader-${name}` };
  const candidate = { username: 'candidate', password: `candidate-${name}` };
  await seedPostgres(
    { ...server, database: db },
    { dataset: resolveDataset('retail@1'), size: 'small', candidate, grader },
  );
  const ns = candidateNamespace(team, name);
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const data = {
    database: db,
    'grader-username': grader.username,
    'grader-password': grader.password,
    username: candidate.username,
    password: candidate.password,
  };
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'warehouse-credentials', namespace: ns },
    stringData: data,
  } as KubeObject);
  await markReady(client, team, name, [
    {
      name: 'warehouse',
      kind: 'postgres',
      host: '127.0.0.1',
      port: server.port,
      secretName: 'warehouse-credentials',
    },
  ]);
  return { database: db, candidate, grader };
}

/**
 * Writes the Ready status the operator writes once the kubelet reports the sandboxes up (built by
 * the operator's `nextStatus`), with the given sandboxes pointed at `host:port`.
 */
export async function markReady(client: KubeClient, team: string, name: string, sandboxes: Endpoint[]) {
  await writeOperatorReadyStatus(client, team, name, sandboxes);
}

export { eventually };
