import { KINDS, LABELS } from '@epreuve/crds';
import { type KubeObject, resourceFor } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApi } from '../harness/api.ts';
import { assessmentObject, sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { reportPodsReady } from '../harness/kubelet-stand-in.ts';
import { TestIssuer } from '../harness/oidc.ts';
import { OperatorProcess } from '../harness/operator.ts';

/**
 * Warm pool claims beyond the happy path (issue 16), against a real API server and controller
 * manager: a member that fails after its claim, an operator killed in the middle of claims, the
 * team's active-assessment budget (pool members are not assessments), and a template deleted
 * while it has members. Nothing runs pods here: the test reports them (kubelet-stand-in); the
 * operator reaches no database, so each claim's credentials are set by the rotate Job, whose pod
 * is reported succeeded like the others.
 */
const kubeconfig = inject('kubeconfig');
const client = kube(kubeconfig);
const NS = resourceFor('v1', 'Namespace');
const POD = resourceFor('v1', 'Pod');
const TEMPLATE = 'pooled';

type Asmt = KubeObject & {
  status?: {
    phase?: string;
    namespace?: string;
    pool?: { template: string };
    sandboxes?: Array<{ name: string; ready: boolean }>;
    conditions?: Array<{ type: string; status: string; message?: string }>;
  };
};
type Tpl = KubeObject & { status?: { pool?: { desired: number; ready: number; claimed: number } } };

let team: string;
let operator: OperatorProcess;
const start = () => new OperatorProcess(kubeconfig, { EPREUVE_LEADER_ELECT: 'false' }).start();

const pooledTemplate = (ns: string, min: number) => {
  const t = sample<{ spec: Record<string, unknown> }>('data-engineer.yaml');
  return {
    ...t,
    metadata: { name: TEMPLATE, namespace: ns },
    spec: { ...t.spec, pool: { min } },
  } as unknown as KubeObject;
};

/** A team's pool namespaces (not being deleted). */
async function members(ns: string, which: 'all' | 'unclaimed' | 'ready' | 'claimed'): Promise<KubeObject[]> {
  const list = await client.list<KubeObject>(NS, {
    labelSelector: `${LABELS.pool}=${TEMPLATE},${LABELS.ownerNamespace}=${ns}`,
  });
  return list.items.filter((n) => {
    if (n.metadata.deletionTimestamp) return false;
    const state = n.metadata.labels?.[LABELS.poolState];
    if (which === 'unclaimed') return state !== 'claimed';
    if (which === 'all') return true;
    return state === which;
  });
}

/** Reports every pool namespace's pods (claimed ones too: their rotate Job) until `n` unclaimed are ready. */
const poolReady = (ns: string, n: number) =>
  eventually(async () => {
    for (const m of await members(ns, 'all')) await reportPodsReady(client, m.metadata.name!);
    expect(await members(ns, 'ready')).toHaveLength(n);
  }, 60_000);

const get = (ns: string, name: string) => client.get<Asmt>(KINDS.Assessment, ns, name);
const create = (ns: string, name: string) =>
  client.create(assessmentObject(ns, name, { templateRef: { name: TEMPLATE } }) as KubeObject);
const readyAssessment = (ns: string, name: string) =>
  eventually(async () => {
    const a = await get(ns, name);
    if (a?.status?.namespace) await reportPodsReady(client, a.status.namespace);
    expect(a?.status?.phase).toBe('Ready');
    return a!;
  }, 60_000);

beforeAll(async () => {
  team = await createTestNamespace(kubeconfig, 'pool-claims');
  await client.apply(pooledTemplate(team, 2), { fieldManager: 'test' });
  operator = await start();
});

afterAll(async () => {
  await operator?.stop();
  await client.delete(NS, undefined, team);
});

describe('warm pool claims', () => {
  it('a member that fails after its claim: the assessment says so; the pool neither deletes, counts nor hands it out', async () => {
    await poolReady(team, 2);
    await create(team, 'ada');
    const ada = await readyAssessment(team, 'ada');
    const ns = ada.status!.namespace!;
    expect(ada.status?.pool?.template).toBe(TEMPLATE);

    // Its PostgreSQL stops being ready (as a kubelet reports a failing probe).
    const pods = await client.list<KubeObject>(POD, {
      namespace: ns,
      labelSelector: 'app.kubernetes.io/name=postgres',
    });
    expect(pods.items.length).toBeGreaterThan(0);
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    for (const pod of pods.items)
      await client.mergePatch(
        POD,
        ns,
        pod.metadata.name!,
        {
          status: {
            conditions: [
              { type: 'Ready', status: 'False', lastTransitionTime: now },
              { type: 'ContainersReady', status: 'False', lastTransitionTime: now },
            ],
          },
        },
        'status',
      );
    const failing = await eventually(async () => {
      const a = await get(team, 'ada');
      expect(a?.status?.sandboxes?.find((s) => s.name === 'warehouse')?.ready).toBe(false);
      return a!;
    });
    expect(failing.status?.phase).not.toBe('Ready');
    expect(failing.status?.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/warehouse/);
    expect(failing.status?.namespace).toBe(ns); // still where it lives: no cold start, no other member

    // The pool refills for the claim and counts the failing namespace as claimed, never as its own.
    await poolReady(team, 2);
    await eventually(async () => {
      const t = await client.get<Tpl>(KINDS.AssessmentTemplate, team, TEMPLATE);
      expect(t?.status?.pool).toMatchObject({ ready: 2, claimed: 1 });
    });
    const claimed = await client.get<KubeObject>(NS, undefined, ns);
    expect(claimed?.metadata.deletionTimestamp).toBeUndefined();
    expect(claimed?.metadata.labels?.[LABELS.assessment]).toBe('ada');

    // A new assessment gets another member; the failing one recovers in place.
    await create(team, 'bob');
    const bob = await readyAssessment(team, 'bob');
    expect(bob.status?.namespace).not.toBe(ns);
    await reportPodsReady(client, ns); // a new pod of the StatefulSet, or the old one ready again
    for (const pod of pods.items) await client.delete(POD, ns, pod.metadata.name!).catch(() => false);
    await readyAssessment(team, 'ada');
    expect((await get(team, 'ada'))?.status?.namespace).toBe(ns);
  });

  it('an operator killed in the middle of claims converges: one namespace each, none claimed twice', async () => {
    await poolReady(team, 2);
    const names = ['k-1', 'k-2', 'k-3'];
    await Promise.all(names.map((n) => create(team, n)));
    // Somewhere in the claims' passes (finalizer, claim patch, Secret patches, rotate Job, status).
    await new Promise((r) => setTimeout(r, 150));
    await operator.kill('SIGKILL');
    operator = await start();
    const placed = await Promise.all(names.map((n) => readyAssessment(team, n)));
    const namespaces = placed.map((a) => a.status!.namespace!);
    expect(new Set(namespaces).size).toBe(names.length);
    // Two members were ready: at most two claims; the rest started cold.
    const pooled = placed.filter((a) => a.status?.pool);
    expect(pooled.length).toBeLessThanOrEqual(2);
    const claims = (await members(team, 'claimed')).map((n) => [
      n.metadata.name,
      n.metadata.labels?.[LABELS.assessment],
    ]);
    // Each claimed namespace names one assessment, and that assessment lives there.
    for (const a of pooled) expect(claims).toContainEqual([a.status!.namespace, a.metadata.name]);
    expect(new Set(claims.map(([, who]) => who)).size).toBe(claims.length);
    await poolReady(team, 2); // and the pool refills
  });

  it('a team’s active-assessment budget counts assessments, not its pool members', async () => {
    const budgetTeam = await createTestNamespace(kubeconfig, 'pool-budget');
    const issuer = new TestIssuer();
    await issuer.start();
    const key = 'epk_pool-budget-key-for-tests-0123456789';
    const api = await startApi(kubeconfig, {
      issuer,
      apiKey: key,
      apiKeyTeams: [budgetTeam],
      env: { EPREUVE_MAX_ACTIVE_ASSESSMENTS_PER_TEAM: '1' },
    });
    try {
      await client.apply(pooledTemplate(budgetTeam, 2), { fieldManager: 'test' });
      await poolReady(budgetTeam, 2); // two namespaces held for the team, budget 1
      const post = (name: string) =>
        (api.app as FastifyInstance).inject({
          method: 'POST',
          url: `/api/v1/teams/${budgetTeam}/assessments`,
          headers: { authorization: `Bearer ${key}` },
          payload: {
            name,
            templateRef: { name: TEMPLATE },
            candidate: { name: 'Jane Doe', email: 'jane@example.com' },
          },
        });
      expect((await post('first')).statusCode).toBe(201);
      const first = await readyAssessment(budgetTeam, 'first');
      expect(first.status?.pool?.template).toBe(TEMPLATE);
      await eventually(async () => expect(api.store.assessments.get(`${budgetTeam}/first`)).toBeDefined());
      const second = await post('second');
      expect(second.statusCode).toBe(409);
      expect(second.json().detail).toMatch(/has 1 active assessments, its budget is 1/);
    } finally {
      await api.stop();
      await issuer.stop();
      await client.jsonPatch(KINDS.AssessmentTemplate, budgetTeam, TEMPLATE, [
        { op: 'remove', path: '/spec/pool' },
      ]);
      await client.delete(NS, undefined, budgetTeam);
    }
  });

  it('a template deleted with members: unclaimed ones go at once, nothing is claimed any more, the claimed stay until their assessments end', async () => {
    await poolReady(team, 2);
    const claimed = (await members(team, 'claimed')).map((n) => n.metadata.name!);
    expect(claimed.length).toBeGreaterThan(0);
    await client.delete(KINDS.AssessmentTemplate, team, TEMPLATE);
    await eventually(async () => expect(await members(team, 'unclaimed')).toHaveLength(0));
    // Kept from deletion by the assessments that use it; its claimed namespaces stay theirs.
    const t = await client.get<KubeObject>(KINDS.AssessmentTemplate, team, TEMPLATE);
    expect(t?.metadata.deletionTimestamp).toBeDefined();
    expect((await members(team, 'claimed')).map((n) => n.metadata.name).sort()).toEqual([...claimed].sort());
    expect((await get(team, 'ada'))?.status?.phase).toBe('Ready');
    // A new assessment of the template being deleted claims nothing and no member is rebuilt.
    await create(team, 'late');
    await eventually(async () => expect((await get(team, 'late'))?.status?.namespace).toBeTruthy());
    expect((await get(team, 'late'))?.status?.pool).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1500));
    expect(await members(team, 'unclaimed')).toHaveLength(0);
    // Once every assessment is gone, so are the template and the claimed namespaces.
    const all = await client.list<KubeObject>(KINDS.Assessment, { namespace: team });
    for (const a of all.items) await client.delete(KINDS.Assessment, team, a.metadata.name!);
    await eventually(async () => {
      expect(await client.get(KINDS.AssessmentTemplate, team, TEMPLATE)).toBeUndefined();
      expect(await members(team, 'all')).toHaveLength(0);
    }, 60_000);
  });
});
