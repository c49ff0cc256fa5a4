import { isDeepStrictEqual } from 'node:util';
import { candidateNamespace, KINDS } from '@epreuve/crds';
import { Informer, type KubeClient, type KubeObject } from '@epreuve/kube';
import type { FastifyInstance, FastifySerializerCompiler } from 'fastify';
import pg from 'pg';
import pino from 'pino';
import { buildApp } from '../../api/src/app.ts';
import { loadApiConfig } from '../../api/src/config.ts';
import { serializerCompiler } from '../../api/src/serializer.ts';
import {
  type AssessmentObject,
  AssessmentStore,
  type TemplateObject,
} from '../../api/src/services/assessments.ts';
import { AuditTrail } from '../../api/src/services/audit.ts';
import { LinkSigner } from '../../api/src/services/links.ts';
import { type Role, sha256 } from '../../api/src/services/staff-auth.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { seedPostgres } from '../../sandboxes/src/seeder/postgres.ts';
import { graderUrlTemplate, standInGrader } from './grader.ts';
import { eventually, kube } from './kube.ts';
import type { TestIssuer } from './oidc.ts';
import { type Endpoint, writeOperatorReadyStatus } from './operator-status.ts';

/** One response the API serialized, with what its handler returned, for {@link comparingSerializer}. */
export interface ServedResponse {
  method: string;
  /** The route template, e.g. /api/v1/teams/:team/assessments. */
  route: string;
  status: string;
  contentType?: string;
  /** The body through the route's response schema (what clients get). */
  serialized: unknown;
  /** The body as the handler produced it, serialized without any schema. */
  plain: unknown;
  /** Why the schema refused the body (the client got a 500), if it did. */
  error?: string;
}

/**
 * The app's own serializer (api/src/serializer.ts: the response schemas, compiled; it drops
 * undeclared fields), wrapped to record
 * each response beside the same data serialized without a schema: tests assert the two are equal,
 * field for field, so the schemas lose nothing.
 */
export function comparingSerializer(served: ServedResponse[]): FastifySerializerCompiler<unknown> {
  return (route) => {
    const serialize = serializerCompiler(route);
    const where = {
      method: route.method,
      route: route.url,
      status: String(route.httpStatus),
      contentType: (route as { contentType?: string }).contentType,
    };
    return (data) => {
      const plain = JSON.parse(JSON.stringify(data) ?? 'null');
      try {
        const out = serialize(data);
        served.push({ ...where, serialized: JSON.parse(out), plain });
        return out;
      } catch (err) {
        const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
        served.push({ ...where, serialized: undefined, plain, error: cause });
        throw err;
      }
    };
  };
}

/** The responses whose body the schema changed or refused. */
export const lossy = (served: ServedResponse[]) =>
  served.filter((r) => r.error || !isDeepStrictEqual(r.serialized, r.plain));

/**
 * The API wired as main.ts wires it — informers on the real API server, the real app — with a
 * test OIDC issuer and one automation key, for the API and browser suites. With `served`, every
 * response is recorded through {@link comparingSerializer}.
 */
export async function startApi(
  kubeconfig: string,
  o: {
    issuer: TestIssuer;
    apiKey: string;
    apiKeyTeams: string[];
    /** The automation key's role; recruiter when unset. */
    apiKeyRole?: Role;
    served?: ServedResponse[];
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
      { name: 'ci', sha256: sha256(o.apiKey), role: o.apiKeyRole ?? 'recruiter', teams: o.apiKeyTeams },
    ]),
    EPREUVE_PUBLIC_URL: 'https://epreuve.example.com',
    EPREUVE_GRADER_URL: await graderUrlTemplate(),
    // Every injected request comes from 127.0.0.1: suites that test refusals on purpose would
    // trip the per-address brute-force budget (test/integration/brute-force.test.ts tests it).
    EPREUVE_AUTH_FAILURES_PER_MINUTE: '100000',
    ...o.env,
  });
  const log = pino({ level: 'silent' });
  // Collects the app's JSON log lines when asked, e.g. to check the audit trail.
  const appLogger = o.logLines
    ? pino({ level: 'info' }, { write: (line: string) => void o.logLines!.push(line) })
    : false;
  const assessments = new Informer<AssessmentObject>(client, { type: KINDS.Assessment, log });
  const templates = new Informer<TemplateObject>(client, { type: KINDS.AssessmentTemplate, log });
  for (const inf of [assessments, templates]) void inf.run(abort.signal);
  await Promise.all([assessments.waitForSync(), templates.waitForSync()]);
  const store = new AssessmentStore(client, assessments, templates, {
    perTeam: config.EPREUVE_TEAM_BUDGETS,
    default: config.EPREUVE_MAX_ACTIVE_ASSESSMENTS_PER_TEAM,
  });
  const app: FastifyInstance = await buildApp({
    config,
    client,
    store,
    links: await LinkSigner.ephemeral(),
    logger: appLogger,
    ...(o.logLines
      ? { audit: new AuditTrail({ write: (line: string) => void o.logLines!.push(line) }) }
      : {}),
    ...(o.served ? { serializerCompiler: comparingSerializer(o.served) } : {}),
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
 * the candidate namespace, the sandbox's credentials Secret and its grader, and writes the Ready status the
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
  // Roles are server-wide: a grader role per stand-in, so seeding one does not reset another's password.
  const grader = { username: `grader_${name.replace(/-/g, '_')}`, password: `grader-${name}` };
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
  await standInGrader(client, ns, [
    { name: 'warehouse', kind: 'postgres', host: '127.0.0.1', port: server.port, credentials: data },
  ]);
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
