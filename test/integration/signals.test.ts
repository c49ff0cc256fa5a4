import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Assessment, candidateNamespace, KINDS, sandboxHostLabel } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import { KubeConfig } from '@kubernetes/client-node';
import pg from 'pg';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../../hack/cluster/control-plane.ts';
import { findExercise } from '../../sandboxes/src/exercises/index.ts';
import { standInReadyWarehouse, startApi } from '../harness/api.ts';
import { renderChart } from '../harness/chart.ts';
import { DataApiProcess } from '../harness/data-api.ts';
import { sample } from '../harness/fixtures.ts';
import { GatewayProcess, wildcardCertificate } from '../harness/gateway.ts';
import { createTestNamespace, eventually, kube, kubectl } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/**
 * Integrity signals end to end (issue 17, item 7): the real gateway process, running as its own
 * ServiceAccount with the chart's RBAC and admission policy, sees a candidate connect from two
 * addresses at once (real sockets from 127.0.0.2 and 127.0.0.3 through TLS to a real PostgreSQL),
 * writes that into the Assessment's status, the real API serves it as flags on the scorecard and the
 * staff page shows them in a real browser; deleting the assessment deletes them.
 */
const kubeconfig = inject('kubeconfig');
const postgres = inject('postgres');
const DOMAIN = 'signals.test';
const KEY = 'epk_signals-tests-key-0123456789abcdef';
const INTERVAL_MS = 300;
const NAME = 'sig-cand';
const tls = wildcardCertificate(DOMAIN);
const issuer = new TestIssuer();
const gateway = new GatewayProcess();
const dataApi = new DataApiProcess();
const API_KEY = 'signals-candidate-api-key-0123';
const ADMIN_KEY = 'signals-platform-admin-key-0123';
let adminPort: number;
let api: Awaited<ReturnType<typeof startApi>>;
let team: string;
let platform: string;
let suffix: string;
let creds: { database: string; candidate: { username: string; password: string } };
let gatewayConfig: string;
/** The host key the (stood-in) operator drew for the assessment: its sandboxes' names. */
let hostKey: string;

const staffCall = async (method: string, path: string, body?: unknown) => {
  const res = await api.app.inject({
    method: method as 'GET',
    url: `/api/v1/teams/${team}${path}`,
    headers: { authorization: `Bearer ${KEY}` },
    ...(body ? { payload: body as object } : {}),
  });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
};

/**
 * The chart's gateway RBAC and admission policy, as rendered, with cluster-scoped names made
 * unique to this run (other suites install the same chart).
 */
function gatewayRbac(): unknown[] {
  const rendered = renderChart('epreuve-signals', platform, [
    '--set',
    'gateway.enabled=true',
    '--set',
    `gateway.domain=${DOMAIN}`,
    '--show-only',
    'templates/gateway.yaml',
  ]);
  const wanted = [
    'ServiceAccount',
    'ClusterRole',
    'ClusterRoleBinding',
    'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding',
  ];
  const docs = parseAllDocuments(rendered)
    .map((d) => d.toJS())
    .filter((o) => o && wanted.includes(o.kind));
  for (const o of docs) {
    if (o.kind === 'ServiceAccount') continue;
    o.metadata.name += suffix;
    if (o.roleRef) o.roleRef.name += suffix;
    if (o.spec?.policyName) o.spec.policyName += suffix;
  }
  expect(docs.map((o) => o.kind).sort()).toEqual([...wanted].sort());
  return docs;
}

/** A kubeconfig holding a token of the gateway's ServiceAccount: the process runs as it does in a cluster. */
async function gatewayKubeconfig(): Promise<string> {
  const admin = kube(kubeconfig);
  const { status } = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${platform}/serviceaccounts/epreuve-gateway/token`,
    {
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600 },
      },
    },
  );
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const cluster = kc.getCurrentCluster()!;
  const own = new KubeConfig();
  own.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'gateway', token: status.token }],
    contexts: [{ name: 'gateway', cluster: cluster.name, user: 'gateway' }],
    currentContext: 'gateway',
  });
  const file = join(mkdtempSync(join(tmpdir(), 'epreuve-signals-')), 'kubeconfig');
  writeFileSync(file, own.exportConfig(), { mode: 0o600 });
  return file;
}

/** A candidate's PostgreSQL session through the gateway, from the loopback address `from`. */
async function sessionFrom(from: string): Promise<pg.Client> {
  const socket = new Socket();
  const connect = socket.connect.bind(socket);
  // pg connects its stream to (port, host); the host is the sandbox's name (for SNI), reached here
  // on loopback from a chosen source address, the way a second machine would come in.
  socket.connect = ((..._args: unknown[]) =>
    connect({ host: '127.0.0.1', port: gateway.port, localAddress: from })) as typeof socket.connect;
  const client = new pg.Client({
    host: `${sandboxHostLabel(hostKey, 'warehouse')}.${DOMAIN}`,
    port: gateway.port,
    user: creds.candidate.username,
    password: creds.candidate.password,
    database: creds.database,
    ssl: { ca: readFileSync(tls.cert, 'utf8') },
    stream: () => socket,
    connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  return client;
}

const signalsOf = async () =>
  (await kube(kubeconfig).get<Assessment & KubeObject>(KINDS.Assessment, team, NAME))?.status?.signals;

async function writes(): Promise<number> {
  const m = /epreuve_gateway_signals_writes_total\{result="written"\} (\d+)/.exec(await gateway.metrics());
  return Number(m?.[1] ?? 0);
}

beforeAll(async () => {
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'signals');
  platform = await createTestNamespace(kubeconfig, 'epreuve-sig');
  suffix = `-${platform}`;
  const applied = await kubectl(
    kubeconfig,
    ['apply', '--server-side', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: gatewayRbac() }),
  );
  expect(applied.code, applied.stderr).toBe(0);
  // The candidate's data API: its reviewer log on its own admin port, where the API reads it.
  adminPort = await freePort();
  await dataApi.start({ API_KEY, ADMIN_KEY, ADMIN_PORT: String(adminPort) });
  api = await startApi(kubeconfig, {
    issuer,
    apiKey: KEY,
    apiKeyTeams: [team],
    env: { EPREUVE_DATA_API_ADMIN_PORT: String(adminPort) },
  });
  await api.client.apply(
    { ...sample('data-engineer.yaml'), metadata: { name: 'data-engineer', namespace: team } } as KubeObject,
    { fieldManager: 'test' },
  );
  // Once the API's cache holds the template.
  await eventually(async () => {
    const created = await staffCall('POST', '/assessments', {
      name: NAME,
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Grace Hopper', email: 'grace@example.com' },
      startPolicy: 'Immediate',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  });
  await eventually(async () => expect(api.store.assessments.get(`${team}/${NAME}`)).toBeDefined());
  creds = await standInReadyWarehouse(kubeconfig, postgres, team, NAME);
  // Stand in for the operator for the data API too: its Secret, and its address in the status.
  const admin = kube(kubeconfig);
  await admin.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'source-credentials', namespace: candidateNamespace(team, NAME) },
    stringData: { 'api-key': API_KEY, 'admin-key': ADMIN_KEY },
  } as KubeObject);
  const current = await admin.get<Assessment & KubeObject>(KINDS.Assessment, team, NAME);
  hostKey = current!.status!.hostKey!;
  const sandboxes = current!.status!.sandboxes!.map((x) =>
    x.name === 'source'
      ? { ...x, host: '127.0.0.1', port: Number(new URL(dataApi.url).port), ready: true, message: undefined }
      : x,
  );
  await admin.mergePatch(KINDS.Assessment, team, NAME, { status: { sandboxes } }, 'status');
  gatewayConfig = await gatewayKubeconfig();
  await gateway.start(gatewayConfig, DOMAIN, tls, {
    EPREUVE_GATEWAY_SIGNALS_INTERVAL_MS: String(INTERVAL_MS),
  });
}, 120_000);

afterAll(async () => {
  gateway.stop();
  await dataApi.stop();
  await api?.stop();
  await issuer.stop();
  await kubectl(kubeconfig, [
    'delete',
    'validatingadmissionpolicybinding,validatingadmissionpolicy,clusterrolebinding,clusterrole',
    '-l',
    'app.kubernetes.io/instance=epreuve-signals',
  ]);
});

describe('integrity signals', () => {
  it('the gateway, as its own ServiceAccount, records two addresses and two concurrent sessions in status.signals', async () => {
    const [a, b] = await Promise.all([sessionFrom('127.0.0.2'), sessionFrom('127.0.0.3')]);
    // Both logged in and open at once.
    expect((await a.query('select 40 + 2 as n')).rows[0].n).toBe(42);
    expect((await b.query('select 40 + 2 as n')).rows[0].n).toBe(42);
    await Promise.all([a.end(), b.end()]);
    const stored = await eventually(async () => {
      const s = await signalsOf();
      expect(s?.connections).toBe(2);
      return s!;
    });
    expect({ ...stored, clientAddresses: [...(stored.clientAddresses ?? [])].sort() }).toEqual({
      firstConnectionAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      lastConnectionAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      connections: 2,
      maxConcurrent: 2,
      clientAddresses: ['127.0.0.2', '127.0.0.3'],
      clientAddressCount: 2,
      sandboxes: [{ name: 'warehouse', connections: 2 }],
    });
    // The gateway's own write: its user agent is the field manager of status.signals.
    const a2 = await kube(kubeconfig).get<Assessment & KubeObject>(KINDS.Assessment, team, NAME);
    const managers = ((a2!.metadata as { managedFields?: unknown[] }).managedFields ?? []) as Array<{
      manager: string;
      fieldsV1?: object;
    }>;
    expect(
      managers.some(
        (m) => m.manager.startsWith('epreuve-gateway') && JSON.stringify(m.fieldsV1).includes('f:signals'),
      ),
    ).toBe(true);
  }, 60_000);

  it('writes at most once per interval however many connections come: ten in a row are a few writes', async () => {
    const before = await writes();
    expect(before).toBeGreaterThanOrEqual(1);
    const started = Date.now();
    for (let i = 0; i < 10; i++) await (await sessionFrom('127.0.0.2')).end();
    const elapsed = Date.now() - started;
    await eventually(async () => expect((await signalsOf())?.connections).toBe(12));
    const made = (await writes()) - before;
    expect(made).toBeGreaterThanOrEqual(1);
    // One write per interval at most (+1 for the round that caught the last ones).
    expect(made).toBeLessThanOrEqual(Math.ceil(elapsed / INTERVAL_MS) + 1);
    expect(made).toBeLessThan(10);
    const s = await signalsOf();
    expect(s?.maxConcurrent).toBe(2); // one at a time since: the maximum stays
    expect(s?.clientAddressCount).toBe(2);
  }, 60_000);

  it('the API serves them as flags on the scorecard, with the first answer’s delay', async () => {
    const link = await staffCall('POST', `/assessments/${NAME}/link`);
    expect(link.status, JSON.stringify(link.body)).toBe(200);
    await eventually(async () =>
      expect(
        api.store.assessments.get(`${team}/${NAME}`)?.metadata.annotations?.['epreuve.dev/link-id'],
      ).toBeTruthy(),
    );
    const answered = await api.app.inject({
      method: 'POST',
      url: '/api/v1/candidate/tasks/rank-customers-by-country/submissions',
      headers: { authorization: `Bearer ${link.body.token}` },
      payload: { answer: findExercise('rank-customers-by-country').reference },
    });
    expect(answered.statusCode, answered.body).toBe(201);
    const submittedAt = JSON.parse(answered.body).submittedAt as string;
    const stored = (await signalsOf())!;
    await eventually(async () =>
      expect(api.store.assessments.get(`${team}/${NAME}`)?.status?.signals?.connections).toBe(12),
    );
    const card = await staffCall('GET', `/assessments/${NAME}/scorecard`);
    expect(card.status).toBe(200);
    const seconds = Math.round((Date.parse(submittedAt) - Date.parse(stored.firstConnectionAt!)) / 1000);
    expect(card.body.signals).toMatchObject({
      firstConnectionAt: stored.firstConnectionAt,
      connections: 12,
      clientAddressCount: 2,
      maxConcurrentSessions: 2,
      sandboxes: [{ name: 'warehouse', connections: 12 }],
      firstAnswerAt: submittedAt,
      secondsToFirstAnswer: seconds,
    });
    expect([...card.body.signals.clientAddresses].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(card.body.signals.flags).toEqual(
      expect.arrayContaining([
        { code: 'clientAddresses', value: 2 },
        { code: 'concurrentSessions', value: 2 },
        { code: 'firstAnswerAfter', value: seconds },
      ]),
    );
    // The team's list carries the gateway's signals too, without asking the data APIs.
    const board = await staffCall('GET', '/scorecards');
    const line = board.body.items.find((c: { assessment: string }) => c.assessment === NAME);
    expect(line.signals.maxConcurrentSessions).toBe(2);
    expect(line.signals.dataApi).toBeNull();
  }, 60_000);

  it('the staff page shows them as flags, with the note that they are signals, not verdicts', async () => {
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(api.app.server.address() as { port: number }).port}`;
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage({ locale: 'en-US' });
      await page.goto(`${url}/staff`);
      await page.getByLabel('Team').fill(team);
      await page.getByLabel('Token or API key').fill(KEY);
      await page.getByRole('button', { name: 'Open' }).click();
      const row = page.locator(`#rows tr[data-name="${NAME}"]`);
      await row.waitFor({ timeout: 20_000 });
      await row.getByRole('button', { name: /Results/ }).click();
      const flags = page.locator('#signals li');
      await expect
        .poll(() => flags.allTextContents())
        .toEqual(expect.arrayContaining(['2 client addresses', '2 concurrent sessions']));
      expect(
        (await flags.allTextContents()).some((f) => /^first answer \d+ s after first connection$/.test(f)),
      ).toBe(true);
      expect(await page.locator('#results').textContent()).toMatch(/never verdicts/);
      expect(await page.locator('#results .timeline').textContent()).toMatch(
        /First connection through the gateway/,
      );
    } finally {
      await browser.close();
    }
  }, 90_000);

  it('the data API calls through the gateway show on the scorecard as data API use', async () => {
    const name = `${sandboxHostLabel(hostKey, 'source')}.${DOMAIN}`;
    for (const limit of [0, 2, 3]) {
      const out = execFileSync('curl', [
        '-sS',
        '--max-time',
        '10',
        '--interface',
        '127.0.0.5',
        '--resolve',
        `${name}:${gateway.port}:127.0.0.1`,
        '--cacert',
        tls.cert,
        '-H',
        `X-API-Key: ${API_KEY}`,
        `https://${name}:${gateway.port}/v1/customers?limit=${limit}`,
      ]).toString();
      if (limit) expect(JSON.parse(out).data, out).toHaveLength(limit);
    }
    // Without asking, the scorecard does not call the data API (the team's list never does).
    expect((await staffCall('GET', `/assessments/${NAME}/scorecard`)).body.signals.dataApi).toBeNull();
    const bad = await staffCall('GET', `/assessments/${NAME}/scorecard?dataApi=maybe`);
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/dataApi/);
    const card = await eventually(async () => {
      const c = await staffCall('GET', `/assessments/${NAME}/scorecard?dataApi=true`);
      expect(c.body.signals.sandboxes).toContainEqual({ name: 'source', connections: 3 });
      return c;
    });
    expect(card.body.signals.dataApi).toMatchObject({ available: true, calls: 3, errorResponses: 1 });
    expect(card.body.signals.dataApi.firstCallAt <= card.body.signals.dataApi.lastCallAt).toBe(true);
    expect(card.body.signals.flags).toContainEqual({ code: 'dataApiCalls', value: 3 });
    expect(card.body.signals.clientAddressCount).toBe(3); // 127.0.0.5 as well now
  }, 60_000);

  it('the admission policy leaves the gateway status.signals alone: no phase, no spec', async () => {
    // As the gateway: the same token its process runs with.
    const asIt = kube(gatewayConfig);
    const patch = async (body: object, sub?: string) => {
      try {
        await asIt.mergePatch(KINDS.Assessment, team, NAME, body, sub);
        return 'ok';
      } catch (err) {
        return (err as Error).message;
      }
    };
    // The policy is compiled and bound asynchronously: wait until it bites.
    const refused = await eventually(async () => {
      const res = await patch({ status: { phase: 'Expired' } }, 'status');
      expect(res).not.toBe('ok');
      return res;
    });
    expect(refused).toMatch(/may only write status\.signals/);
    expect(await patch({ status: { sandboxes: [] } }, 'status')).toMatch(/may only write status\.signals/);
    expect(await patch({ spec: { revoked: true } })).toMatch(/forbidden|cannot patch/i);
    expect(await patch({ status: { signals: { connections: 12 } } }, 'status')).toBe('ok');
    expect(api.store.assessments.get(`${team}/${NAME}`)?.status?.phase).toBe('Ready');
  }, 60_000);

  it('deleting the assessment deletes them: nothing is left, nothing comes back under the same name', async () => {
    // Something pending in the gateway when the assessment goes.
    await (await sessionFrom('127.0.0.4')).end();
    expect((await staffCall('DELETE', `/assessments/${NAME}`)).status).toBe(204);
    await eventually(async () =>
      expect(await kube(kubeconfig).get(KINDS.Assessment, team, NAME)).toBeUndefined(),
    );
    await eventually(async () =>
      expect((await staffCall('GET', `/assessments/${NAME}/scorecard`)).status).toBe(404),
    );
    // Well past the interval, a new assessment of that name has no signals of the old one.
    const again = await staffCall('POST', '/assessments', {
      name: NAME,
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Someone Else', email: 'else@example.com' },
    });
    expect(again.status).toBe(201);
    await sleep(4 * INTERVAL_MS);
    const fresh = await kube(kubeconfig).get<Assessment & KubeObject>(KINDS.Assessment, team, NAME);
    expect(fresh?.spec.candidate.name).toBe('Someone Else');
    expect(fresh?.status?.signals).toBeUndefined();
    expect(gateway.alive).toBe(true);
  }, 60_000);
});
