import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KINDS, LABELS } from '@epreuve/crds';
import { type KubeObject, resourceFor } from '@epreuve/kube';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { DataApiProcess } from '../harness/data-api.ts';
import { assessmentObject, sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { reportPodsReady } from '../harness/kubelet-stand-in.ts';
import { OperatorProcess } from '../harness/operator.ts';
import { PoolDatabases, poolAddressEnv, type SeededMember } from '../harness/pool-databases.ts';

/**
 * A claim rotates the candidate's credentials without a pod start: the operator sets the new
 * passwords in the real PostgreSQL and the real (authenticated) FerretDB itself, in the pass that
 * claims, and the assessment is Ready in that pass — no rotate Job. Old passwords are refused
 * after it and a PostgreSQL session opened before it is ended. When the databases cannot be
 * reached, the rotate Job takes over (pool.test.ts runs that path: its operator has no address).
 */
const kubeconfig = inject('kubeconfig');
const server = inject('postgres');
const client = kube(kubeconfig);
const NS = resourceFor('v1', 'Namespace');
const JOB = resourceFor('batch/v1', 'Job');
const TEMPLATE = 'pooled';
const mongoAdmin = { username: 'root', password: randomBytes(12).toString('hex') };
const ferret = new FerretServer({ auth: mongoAdmin });
// The data API as its pod runs it: its key from a file (the mounted Secret), /admin for the platform.
const dataApi = new DataApiProcess();
const dataApiAdminKey = randomBytes(18).toString('base64url');
const keyDir = mkdtempSync(join(tmpdir(), 'pool-data-api-'));
const keyFile = join(keyDir, 'api-key');
const SECRET = resourceFor('v1', 'Secret');
const secretKey = async (ns: string, key: string) => {
  const sec = await client.get<KubeObject & { data: Record<string, string> }>(
    SECRET,
    ns,
    'source-credentials',
  );
  return Buffer.from(sec!.data[key]!, 'base64').toString();
};
const dataApiStatus = async (key: string) =>
  (await fetch(`${dataApi.url}/v1/customers/1`, { headers: { 'x-api-key': key } })).status;

type Asmt = KubeObject & { status?: { phase?: string; namespace?: string; pool?: { template: string } } };

let team: string;
let operator: OperatorProcess;
let dbs: PoolDatabases;

const readyMember = () =>
  eventually(async () => {
    const list = await client.list<KubeObject>(NS, {
      labelSelector: `${LABELS.pool}=${TEMPLATE},${LABELS.ownerNamespace}=${team}`,
    });
    const free = list.items.filter(
      (ns) => !ns.metadata.deletionTimestamp && ns.metadata.labels?.[LABELS.poolState] !== 'claimed',
    );
    for (const ns of free) await reportPodsReady(client, ns.metadata.name!);
    const ready = free.filter((ns) => ns.metadata.labels?.[LABELS.poolState] === 'ready');
    expect(ready).toHaveLength(1);
    return ready[0]!.metadata.name!;
  }, 60_000);

beforeAll(async () => {
  await ferret.start();
  writeFileSync(keyFile, randomBytes(18).toString('base64url'));
  await dataApi.start({ API_KEY_FILE: keyFile, ADMIN_KEY: dataApiAdminKey });
  team = await createTestNamespace(kubeconfig, 'pool-inplace');
  const t = sample<{ spec: Record<string, unknown> }>('data-engineer.yaml');
  await client.apply(
    {
      ...t,
      metadata: { name: TEMPLATE, namespace: team },
      spec: { ...t.spec, pool: { min: 1 } },
    } as unknown as KubeObject,
    {
      fieldManager: 'test',
    },
  );
  dbs = new PoolDatabases(client, server, { adminUrl: ferret.adminUrl, ...mongoAdmin });
  operator = await new OperatorProcess(kubeconfig, {
    EPREUVE_LEADER_ELECT: 'false',
    ...poolAddressEnv(server, ferret.url),
    EPREUVE_POOL_DATA_API_ADDRESS: new URL(dataApi.url).host,
  }).start();
}, 180_000);

afterAll(async () => {
  await operator?.stop();
  await dbs?.cleanup().catch(() => {});
  await client.delete(NS, undefined, team);
  await ferret.stop();
  await dataApi.stop();
  rmSync(keyDir, { recursive: true, force: true });
});

describe('a claim rotating credentials in place', () => {
  let member: SeededMember;

  it('is Ready in the claiming pass, with no rotate Job, and the old passwords are refused', async () => {
    const ns = await readyMember();
    member = await dbs.seed(ns);
    // The data API stand-in serves this member: its Secret's key through the file (re-read
    // without a restart: the placeholder is refused once it changed), and the admin key.
    const placeholder = readFileSync(keyFile, 'utf8');
    const oldKey = await secretKey(ns, 'api-key');
    await client.mergePatch(SECRET, ns, 'source-credentials', {
      stringData: { 'admin-key': dataApiAdminKey },
    });
    writeFileSync(keyFile, oldKey);
    await eventually(async () => expect(await dataApiStatus(oldKey)).toBe(200), 5000, 100);
    expect(await dataApiStatus(placeholder)).toBe(401);
    // What the pool member's candidate credentials opened before the claim.
    expect(await dbs.pgLogin(member, member.postgres.password)).toBe(member.postgres.username);
    expect(await dbs.mongoLogin(member, member.mongo!.password)).toMatchObject({ ok: 1 });
    const before = new pg.Client({
      ...server,
      user: member.postgres.username,
      password: member.postgres.password,
      database: 'postgres',
    });
    before.on('error', () => {});
    await before.connect();

    const started = Date.now();
    await client.create(assessmentObject(team, 'ada', { templateRef: { name: TEMPLATE } }) as KubeObject);
    const a = await eventually(async () => {
      const got = await client.get<Asmt>(KINDS.Assessment, team, 'ada');
      expect(got?.status?.phase).toBe('Ready');
      return got!;
    }, 20_000);
    const elapsed = Date.now() - started;
    expect(a.status?.namespace).toBe(ns);
    expect(a.status?.pool?.template).toBe(TEMPLATE);
    expect(await client.get(JOB, ns, 'rotate')).toBeUndefined();
    const claimed = await client.get<KubeObject>(NS, undefined, ns);
    expect(claimed?.metadata.annotations?.['epreuve.dev/credentials-rotated-at']).toBeTruthy();

    const now = await dbs.current(ns);
    expect(now.postgres).not.toBe(member.postgres.password);
    expect(now.mongo).not.toBe(member.mongo!.password);
    await expect(dbs.pgLogin(member, member.postgres.password)).rejects.toMatchObject({ code: '28P01' });
    await expect(dbs.mongoLogin(member, member.mongo!.password)).rejects.toThrow(/auth/i);
    expect(await dbs.pgLogin(member, now.postgres)).toBe(member.postgres.username);
    expect(await dbs.mongoLogin(member, now.mongo!)).toMatchObject({ ok: 1 });
    await expect(before.query('SELECT 1')).rejects.toThrow(/terminat|connection/i);
    // The data API's key too, at once (PUT /admin/api-key), though its file still says the old one.
    const newKey = await secretKey(ns, 'api-key');
    expect(newKey).not.toBe(oldKey);
    expect(await dataApiStatus(oldKey)).toBe(401);
    expect(await dataApiStatus(newKey)).toBe(200);
    await before.end().catch(() => {});
    // Generous against a loaded machine; the benchmark (test/bench/pool-claim.ts) measures it.
    expect(elapsed).toBeLessThan(10_000);
  });

  it('rotates once per claim: later passes (and a restarted operator) leave the credentials alone', async () => {
    const ns = member.namespace;
    const rotated = await dbs.current(ns);
    const key = await secretKey(ns, 'api-key');
    await operator.stop();
    operator = await new OperatorProcess(kubeconfig, {
      EPREUVE_LEADER_ELECT: 'false',
      ...poolAddressEnv(server, ferret.url),
    }).start();
    // A change that wakes the assessment: its pass must not rotate again.
    await client.mergePatch(KINDS.Assessment, team, 'ada', { metadata: { labels: { touched: 'yes' } } });
    await new Promise((r) => setTimeout(r, 2000));
    expect(await dbs.current(ns)).toEqual(rotated);
    expect(await secretKey(ns, 'api-key')).toBe(key);
    expect(await dbs.pgLogin(member, rotated.postgres)).toBe(member.postgres.username);
    expect((await client.get<Asmt>(KINDS.Assessment, team, 'ada'))?.status?.phase).toBe('Ready');
  });
});
