import { DATA_API_CREDENTIAL_KEYS, DB_CREDENTIAL_KEYS as KEYS } from '@epreuve/crds';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import type { OperatorConfig } from '../config.ts';

/**
 * Credential rotation at a claim, done by the operator itself (issue 16: claim → Ready ≤ 2 s).
 *
 * Why here and not in a pod: the rotate Job costs a pod start (5–8 s on one node), and a sandbox
 * reloading a mounted Secret waits for the kubelet's sync (up to a minute). The operator already
 * holds the new password (it wrote it) and the platform namespace may reach the sandboxes
 * (allow-platform-ingress), so it connects as each database's admin and sets it: one round trip.
 * The admin credentials come from the response to its own patch of the Secret (a PATCH answers
 * with the object written), so its RBAC gains nothing: no `get` on Secrets. Whatever fails here
 * falls back to the rotate Job (claim.ts), which does the same from a pod.
 */

/** One sandbox of a claimed namespace, where the operator reaches it (a data API: its admin port). */
export interface RotationTarget {
  sandbox: string;
  kind: 'postgres' | 'mongo' | 'dataApi';
  host: string;
  port: number;
}

/** `{service}.{namespace}.svc:{port}` (EPREUVE_POOL_*_ADDRESS) filled in for one sandbox. */
export function sandboxAddress(
  config: Pick<
    OperatorConfig,
    'EPREUVE_POOL_POSTGRES_ADDRESS' | 'EPREUVE_POOL_MONGO_ADDRESS' | 'EPREUVE_POOL_DATA_API_ADDRESS'
  >,
  kind: 'postgres' | 'mongo' | 'dataApi',
  service: string,
  namespace: string,
  port: number,
): { host: string; port: number } {
  const template = {
    postgres: config.EPREUVE_POOL_POSTGRES_ADDRESS,
    mongo: config.EPREUVE_POOL_MONGO_ADDRESS,
    dataApi: config.EPREUVE_POOL_DATA_API_ADDRESS,
  }[kind];
  const filled = template
    .replaceAll('{service}', service)
    .replaceAll('{namespace}', namespace)
    .replaceAll('{port}', String(port));
  const at = filled.lastIndexOf(':');
  return { host: filled.slice(0, at), port: Number(filled.slice(at + 1)) };
}

/** A Secret's `data`, decoded. */
export function decodeSecretData(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

export interface RotateInPlaceOptions {
  /** Connect and statement timeout per database: past it, the Job takes over. */
  timeoutMs: number;
}

/**
 * Sets the candidate's password of one database to the one in `creds` (its Secret as just
 * patched) and, for PostgreSQL, ends the candidate's sessions opened before, as the rotate Job
 * does. Throws, naming the sandbox, when the database cannot be reached or refuses.
 */
export async function rotateInPlace(
  target: RotationTarget,
  creds: Record<string, string>,
  o: RotateInPlaceOptions,
): Promise<void> {
  const needed =
    target.kind === 'dataApi'
      ? [DATA_API_CREDENTIAL_KEYS.apiKey, DATA_API_CREDENTIAL_KEYS.adminKey]
      : [KEYS.username, KEYS.password, KEYS.adminUsername, KEYS.adminPassword, KEYS.database];
  const missing = needed.filter((k) => !creds[k]);
  const where = `${target.sandbox} (${target.kind} at ${target.host}:${target.port})`;
  if (missing.length > 0) throw new Error(`rotating ${where}: its Secret has no ${missing.join(', ')}`);
  try {
    if (target.kind === 'postgres') await rotatePostgres(target, creds, o);
    else if (target.kind === 'mongo') await rotateMongo(target, creds, o);
    else await rotateDataApi(target, creds, o);
  } catch (err) {
    throw new Error(`rotating ${where} failed: ${(err as Error).message}`);
  }
}

async function rotatePostgres(t: RotationTarget, creds: Record<string, string>, o: RotateInPlaceOptions) {
  const client = new pg.Client({
    host: t.host,
    port: t.port,
    user: creds[KEYS.adminUsername],
    password: creds[KEYS.adminPassword],
    database: creds[KEYS.database],
    connectionTimeoutMillis: o.timeoutMs,
    statement_timeout: o.timeoutMs,
    query_timeout: o.timeoutMs,
  });
  client.on('error', () => {}); // a server going away mid-query rejects the query too
  await client.connect();
  try {
    await client.query(
      `ALTER ROLE ${pg.escapeIdentifier(creds[KEYS.username]!)} PASSWORD ${pg.escapeLiteral(creds[KEYS.password]!)}`,
    );
    await client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
      [creds[KEYS.username]],
    );
  } finally {
    await client.end().catch(() => {});
  }
}

async function rotateMongo(t: RotationTarget, creds: Record<string, string>, o: RotateInPlaceOptions) {
  const client = new MongoClient(`mongodb://${t.host}:${t.port}/?authSource=admin`, {
    auth: { username: creds[KEYS.adminUsername], password: creds[KEYS.adminPassword] },
    serverSelectionTimeoutMS: o.timeoutMs,
    connectTimeoutMS: o.timeoutMs,
    socketTimeoutMS: o.timeoutMs,
    directConnection: true,
  });
  client.on('error', () => {});
  try {
    // The seed made the user in the candidate's database (seeder/mongo.ts ensureUsers): only its password changes.
    await client
      .db(creds[KEYS.database])
      .command({ updateUser: creds[KEYS.username], pwd: creds[KEYS.password] });
  } finally {
    await client.close().catch(() => {});
  }
}

/** The data API's admin endpoint (sandboxes/src/data-api: PUT /admin/api-key): the new key in force at once. */
async function rotateDataApi(t: RotationTarget, creds: Record<string, string>, o: RotateInPlaceOptions) {
  const res = await fetch(`http://${t.host}:${t.port}/admin/api-key`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'x-admin-key': creds[DATA_API_CREDENTIAL_KEYS.adminKey]! },
    body: JSON.stringify({ key: creds[DATA_API_CREDENTIAL_KEYS.apiKey] }),
    signal: AbortSignal.timeout(o.timeoutMs),
  });
  if (res.status !== 204)
    throw new Error(`PUT /admin/api-key answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
}
