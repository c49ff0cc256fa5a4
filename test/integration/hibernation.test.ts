import { accessRefusal, candidateNamespace, KINDS } from '@epreuve/crds';
import { type KubeObject, type ResourceType, resourceFor } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AssessmentObject } from '../../api/src/services/assessments.ts';
import { startApi } from '../harness/api.ts';
import { assessmentObject, sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';
import { OperatorProcess } from '../harness/operator.ts';

/**
 * onExpiry: Hibernate (issue 17) against a real API server and controller manager, with the real
 * operator process and the API: at the deadline the workloads go to 0 replicas and the volumes
 * stay; the candidate is refused; staff reopen scales them back up; the retention's end deletes
 * the namespace; a revoke deletes at once. The clock is driven as operator.test.ts drives it: an
 * OnFirstAccess arrival written in the past puts the deadline where the test wants it.
 */
const kubeconfig = inject('kubeconfig');
const client = kube(kubeconfig);
const ASMT = KINDS.Assessment;
const NS = resourceFor('v1', 'Namespace');
const STS = resourceFor('apps/v1', 'StatefulSet');
const DEPLOY = resourceFor('apps/v1', 'Deployment');
// Not a kind the project manages (kube/src/resources.ts): described here, for reading only.
const PVC: ResourceType = {
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  plural: 'persistentvolumeclaims',
  namespaced: true,
};
const issuer = new TestIssuer();

type Json = Record<string, any>;
let team: string;
let operator: OperatorProcess;
let api: Awaited<ReturnType<typeof startApi>>;
let app: FastifyInstance;
const auditLines: string[] = [];

const get = (name: string) => client.get<AssessmentObject>(ASMT, team, name);
const call = async (method: string, url: string, o: { token?: string; body?: unknown } = {}) => {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: o.token ? { authorization: `Bearer ${o.token}` } : {},
    ...(o.body !== undefined ? { payload: o.body as object } : {}),
  });
  return {
    status: res.statusCode,
    body: (res.body ? JSON.parse(res.body) : undefined) as Json,
    headers: res.headers,
  };
};
const staff = (role: string) =>
  issuer.token({ sub: `${role}@example.com`, epreuve_roles: [role], epreuve_teams: [team] });

async function waitPhase(name: string, phase: string, timeoutMs = 30_000) {
  return eventually(async () => {
    const a = await get(name);
    expect(a?.status?.phase, JSON.stringify(a?.status?.conditions)).toBe(phase);
    return a!;
  }, timeoutMs);
}

/** Replicas of every StatefulSet and Deployment in the namespace, by kind/name. */
async function replicas(ns: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [kind, type] of [
    ['StatefulSet', STS],
    ['Deployment', DEPLOY],
  ] as const)
    for (const w of (await client.list<KubeObject & { spec: { replicas: number } }>(type, { namespace: ns }))
      .items)
      out[`${kind}/${w.metadata.name}`] = w.spec.replicas;
  return out;
}
const pvcs = async (ns: string) =>
  (await client.list<KubeObject>(PVC, { namespace: ns })).items.map((p) => p.metadata.name).sort();

/** Creates an OnFirstAccess assessment, waits until its workloads and volumes exist. */
async function provisioned(name: string, template: string) {
  await client.create(
    assessmentObject(team, name, {
      templateRef: { name: template },
      startPolicy: 'OnFirstAccess',
      duration: '1h',
    }) as KubeObject,
  );
  const ns = candidateNamespace(team, name);
  // The StatefulSet controller makes the claims with the pods (no provisioner here: they stay Pending).
  await eventually(async () => expect((await pvcs(ns)).length).toBe(3), 60_000);
  return ns;
}
/** Writes the candidate's arrival so that the 1h deadline is `secondsAgo` in the past. */
const arriveSoLongAgo = (name: string, secondsAgo: number) =>
  client.mergePatch(ASMT, team, name, {
    metadata: {
      annotations: {
        'epreuve.dev/candidate-arrived-at': new Date(Date.now() - 3600_000 - secondsAgo * 1000)
          .toISOString()
          .replace(/\.\d+Z$/, 'Z'),
      },
    },
  });

beforeAll(async () => {
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'hib');
  const base = sample<{ spec: Json }>('data-engineer.yaml');
  for (const [name, hibernateFor] of [
    ['keep-3d', '72h'],
    ['keep-1m', '1m'],
  ])
    await client.apply(
      {
        ...base,
        metadata: { name, namespace: team },
        spec: { ...base.spec, onExpiry: 'Hibernate', hibernateFor },
      } as unknown as KubeObject,
      { fieldManager: 'test' },
    );
  operator = await new OperatorProcess(kubeconfig, { EPREUVE_LEADER_ELECT: 'false' }).start();
  api = await startApi(kubeconfig, {
    issuer,
    apiKey: 'epk_unused-key-0123456789abcdefghij',
    apiKeyTeams: [team],
    logLines: auditLines,
  });
  app = api.app;
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await operator?.stop();
  await issuer.stop?.();
  await client.delete(NS, undefined, team);
});

describe('onExpiry: Hibernate', () => {
  it('at the deadline: workloads to 0, volumes kept, Hibernated with its end; the candidate is refused', async () => {
    const ns = await provisioned('hana', 'keep-3d');
    const recruiter = await staff('recruiter');
    await eventually(async () => expect(api.store.assessments.get(`${team}/hana`)).toBeDefined());
    const link = await call('POST', `/api/v1/teams/${team}/assessments/hana/link`, { token: recruiter });
    expect(link.status).toBe(200);
    expect((await call('GET', '/api/v1/candidate/session', { token: link.body.token })).status).toBe(200);
    const volumes = await pvcs(ns);

    await arriveSoLongAgo('hana', 5);
    const a = await waitPhase('hana', 'Hibernated');
    const expiresAt = Date.parse(a.status!.expiresAt!);
    expect(Date.parse(a.status!.hibernatedUntil!)).toBe(expiresAt + 72 * 3600_000);
    expect(a.status?.conditions?.find((c) => c.type === 'Hibernated')).toMatchObject({
      status: 'True',
      reason: 'Stopped',
    });
    await eventually(async () =>
      expect(await replicas(ns)).toEqual({
        'StatefulSet/events': 0,
        'StatefulSet/grader-store': 0,
        'StatefulSet/warehouse': 0,
        'Deployment/grader': 0,
        'Deployment/source': 0,
      }),
    );
    expect(await pvcs(ns)).toEqual(volumes);
    expect((await client.get<KubeObject>(NS, undefined, ns))?.metadata.deletionTimestamp).toBeUndefined();
    // The gateway's rule and the API both refuse the candidate.
    expect(accessRefusal(a, new Date(), true)).toMatch(/ended/);
    await eventually(async () => {
      const session = await call('GET', '/api/v1/candidate/session', { token: link.body.token });
      expect(session.status).toBe(403);
      expect(session.body.detail).toMatch(/ended/);
    });
    // A new link is refused too, and so is an extension.
    expect(
      (await call('POST', `/api/v1/teams/${team}/assessments/hana/link`, { token: recruiter })).status,
    ).toBe(409);
    expect(
      (
        await call('POST', `/api/v1/teams/${team}/assessments/hana/extend`, {
          token: recruiter,
          body: { duration: '3h' },
        })
      ).status,
    ).toBe(409);
    // Counted on the dashboards, and told as an Event.
    await eventually(async () =>
      expect(await operator.metric('epreuve_assessments', { phase: 'Hibernated' })).toBeGreaterThanOrEqual(1),
    );
    await eventually(async () => {
      const events = await client.request<{ items: Array<{ reason: string; regarding: { name: string } }> }>(
        'GET',
        `/apis/events.k8s.io/v1/namespaces/${team}/events`,
      );
      expect(events.items.filter((e) => e.regarding.name === 'hana').map((e) => e.reason)).toContain(
        'Hibernated',
      );
    });
    const view = await call('GET', `/api/v1/teams/${team}/assessments/hana`, { token: recruiter });
    expect(view.body).toMatchObject({ phase: 'Hibernated', hibernatedUntil: a.status!.hibernatedUntil });
  }, 120_000);

  it('staff reopen: sandboxes back up read-only for staff, the candidate still refused; then stopped again', async () => {
    const ns = candidateNamespace(team, 'hana');
    const reviewer = await staff('reviewer');
    const res = await call('POST', `/api/v1/teams/${team}/assessments/hana/reopen`, {
      token: reviewer,
      body: { duration: '1h' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(Math.abs(Date.parse(res.body.reopenedUntil) - (Date.now() + 3600_000))).toBeLessThan(10_000);
    const secret = await client.get<KubeObject & { data: Record<string, string> }>(
      resourceFor('v1', 'Secret'),
      ns,
      'warehouse-credentials',
    );
    const decoded = (k: string) => Buffer.from(secret!.data[k]!, 'base64').toString();
    const warehouse = res.body.sandboxes.find((s: Json) => s.name === 'warehouse');
    expect(warehouse).toMatchObject({
      kind: 'postgres',
      username: 'grader',
      password: decoded('grader-password'),
      readOnly: 'enforced',
      portForward: `kubectl -n ${ns} port-forward svc/warehouse 5432:5432`,
    });
    expect(JSON.stringify(res.body)).not.toContain(decoded('password'));
    expect(res.body.sandboxes.map((s: Json) => s.name).sort()).toEqual(['events', 'warehouse']);
    expect(
      auditLines.some(
        (l) => l.includes('"action":"assessment.reopen"') && l.includes('reviewer@example.com'),
      ),
    ).toBe(true);

    await eventually(async () => expect(Object.values(await replicas(ns))).toEqual([1, 1, 1, 1, 1]));
    const a = await eventually(async () => {
      const got = await get('hana');
      expect(got?.status?.reopenedUntil).toBe(res.body.reopenedUntil);
      return got!;
    });
    expect(a.status?.phase).toBe('Hibernated');
    expect(a.status?.conditions?.find((c) => c.type === 'Hibernated')?.reason).toBe('ReopenedForStaff');
    expect(accessRefusal(a, new Date(), true)).toMatch(/ended/);
    const link = await call('POST', `/api/v1/teams/${team}/assessments/hana/link`, {
      token: await staff('recruiter'),
    });
    expect(link.status).toBe(409);

    // The window ends (written closer, as a shorter reopen would): stopped again, volumes still there.
    await client.mergePatch(ASMT, team, 'hana', {
      metadata: {
        annotations: {
          'epreuve.dev/reopen-until': new Date(Date.now() + 3000).toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      },
    });
    await eventually(async () => expect(Object.values(await replicas(ns))).toEqual([0, 0, 0, 0, 0]), 30_000);
    await eventually(async () =>
      expect((await get('hana'))?.status?.conditions?.find((c) => c.type === 'Hibernated')?.reason).toBe(
        'Stopped',
      ),
    );
    expect((await pvcs(ns)).length).toBe(3);
  }, 90_000);

  it('refuses to reopen what is not hibernated, or for longer than 4h, naming the field', async () => {
    const recruiter = await staff('recruiter');
    await client.create(assessmentObject(team, 'ivo', { templateRef: { name: 'keep-3d' } }) as KubeObject);
    await waitPhase('ivo', 'Provisioning');
    await eventually(async () =>
      expect(api.store.assessments.get(`${team}/ivo`)?.status?.phase).toBe('Provisioning'),
    );
    const running = await call('POST', `/api/v1/teams/${team}/assessments/ivo/reopen`, {
      token: recruiter,
      body: {},
    });
    expect(running.status).toBe(409);
    expect(running.body.detail).toMatch(
      /only a hibernated assessment can be reopened; this one is Provisioning/,
    );
    const tooLong = await call('POST', `/api/v1/teams/${team}/assessments/hana/reopen`, {
      token: recruiter,
      body: { duration: '5h' },
    });
    expect(tooLong.status).toBe(422);
    expect(tooLong.body.invalid_params).toEqual([{ name: 'body.duration', reason: 'tooLong' }]);
    expect(
      (await call('POST', `/api/v1/teams/${team}/assessments/nobody/reopen`, { token: recruiter, body: {} }))
        .status,
    ).toBe(404);
    expect((await call('POST', `/api/v1/teams/${team}/assessments/hana/reopen`, { body: {} })).status).toBe(
      401,
    );
  });

  it('revoke deletes at once, even with Hibernate, even while hibernated', async () => {
    const recruiter = await staff('recruiter');
    // Running, with an onExpiry Hibernate template.
    const revoked = await call('POST', `/api/v1/teams/${team}/assessments/ivo/revoke`, { token: recruiter });
    expect(revoked.status).toBe(200);
    const ivo = await waitPhase('ivo', 'Expired');
    expect(ivo.status?.conditions?.find((c) => c.type === 'Expired')?.reason).toBe('Revoked');
    expect(ivo.status?.hibernatedUntil).toBeUndefined();
    // Hibernated.
    expect(
      (await call('POST', `/api/v1/teams/${team}/assessments/hana/revoke`, { token: recruiter })).status,
    ).toBe(200);
    const hana = await waitPhase('hana', 'Expired');
    expect(hana.status?.conditions?.find((c) => c.type === 'Expired')?.reason).toBe('Revoked');
    for (const name of ['ivo', 'hana'])
      await eventually(
        async () => expect(await client.get(NS, undefined, candidateNamespace(team, name))).toBeUndefined(),
        90_000,
      );
  }, 150_000);

  it('deletes the namespace and its volumes when the retention ends', async () => {
    const ns = await provisioned('jade', 'keep-1m');
    // Deadline 40 s ago, retention 1 minute: hibernated now, deleted in about 20 s.
    await arriveSoLongAgo('jade', 40);
    const hibernated = await waitPhase('jade', 'Hibernated');
    expect(Date.parse(hibernated.status!.hibernatedUntil!)).toBe(
      Date.parse(hibernated.status!.expiresAt!) + 60_000,
    );
    await eventually(async () => expect(Object.values(await replicas(ns)).every((r) => r === 0)).toBe(true));
    const expired = await waitPhase('jade', 'Expired', 60_000);
    expect(expired.status?.conditions?.find((c) => c.type === 'Expired')?.reason).toBe('RetentionEnded');
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(hibernated.status!.hibernatedUntil!));
    await eventually(async () => expect(await client.get(NS, undefined, ns)).toBeUndefined(), 90_000);
    expect(
      await operator.metric('epreuve_expired_total', { reason: 'RetentionEnded' }),
    ).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
