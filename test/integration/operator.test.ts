import { KINDS } from '@epreuve/crds';
import { type KubeObject, resourceFor } from '@epreuve/kube';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { candidateNamespace } from '../../crds/src/index.ts';
import { assessmentObject, sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { reportPodsReady } from '../harness/kubelet-stand-in.ts';
import { OperatorProcess } from '../harness/operator.ts';

/**
 * The operator against a real API server and controller manager: provisioning, status, readiness,
 * deletion through the finalizer, expiry and extension, self-healing of hand-edited objects.
 */
const kubeconfig = inject('kubeconfig');
const client = kube(kubeconfig);
const ASMT = KINDS.Assessment;
const NS = resourceFor('v1', 'Namespace');

type Asmt = KubeObject & {
  status?: {
    phase?: string;
    expiresAt?: string;
    readyAt?: string;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
    sandboxes?: Array<{ name: string; ready: boolean }>;
  };
};

let team: string;
let operator: OperatorProcess;

beforeAll(async () => {
  team = await createTestNamespace(kubeconfig, 'hiring');
  await client.apply(
    { ...sample('data-engineer.yaml'), metadata: { name: 'data-engineer', namespace: team } } as KubeObject,
    { fieldManager: 'test' },
  );
  // Without the webhook controller: it looks up the endpoint Secret of any namespace whose
  // Assessments change, and the files running beside this one change theirs during the quiet
  // windows below, which count this operator's requests (webhooks.test.ts has its own).
  operator = await new OperatorProcess(kubeconfig, {
    EPREUVE_LEADER_ELECT: 'false',
    EPREUVE_WEBHOOKS_ENABLED: 'false',
    EPREUVE_LOG_LEVEL: 'debug', // the per-key `reconciled` lines the quiet windows count
  }).start();
});

afterAll(async () => {
  await operator?.stop();
  await client.delete(NS, undefined, team);
});

const get = (name: string) => client.get<Asmt>(ASMT, team, name);
const create = (name: string, spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}) =>
  client.create(assessmentObject(team, name, spec, metadata) as KubeObject);
const condition = (a: Asmt | undefined, type: string) => a?.status?.conditions?.find((c) => c.type === type);

async function waitPhase(name: string, phase: string, timeoutMs = 30_000): Promise<Asmt> {
  return eventually(async () => {
    const a = await get(name);
    expect(a?.status?.phase, JSON.stringify(a?.status?.conditions)).toBe(phase);
    return a!;
  }, timeoutMs);
}

describe('provisioning', () => {
  it('creates every object of the candidate namespace, with the expected spec', async () => {
    await create('alice');
    const ns = candidateNamespace(team, 'alice');
    const a = await waitPhase('alice', 'Provisioning');
    expect(a.metadata.finalizers).toContain('epreuve.dev/cleanup');
    expect(condition(a, 'Provisioned')).toMatchObject({ status: 'True', reason: 'ObjectsApplied' });
    expect(condition(a, 'Ready')).toMatchObject({ status: 'False', reason: 'WaitingForSandboxes' });

    const namespace = await client.get(NS, undefined, ns);
    expect(namespace?.metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'epreuve.dev/assessment': 'alice',
      'epreuve.dev/owner-namespace': team,
    });
    const names = async (kind: string, apiVersion = 'v1') =>
      (await client.list<KubeObject>(resourceFor(apiVersion, kind), { namespace: ns })).items
        .map((o) => o.metadata.name)
        .sort();
    // A MongoDB sandbox brings the grader store: a server only the seed Job and the grader reach.
    expect(await names('StatefulSet', 'apps/v1')).toEqual(['events', 'grader-store', 'warehouse']);
    expect(await names('Deployment', 'apps/v1')).toEqual(['grader', 'source']);
    expect(await names('Job', 'batch/v1')).toEqual(['seed']);
    expect(await names('Service')).toEqual(['events', 'grader', 'grader-store', 'source', 'warehouse']);
    expect(await names('Secret')).toEqual([
      'events-credentials',
      'grader-credentials',
      'grader-store-credentials',
      'source-credentials',
      'warehouse-credentials',
    ]);
    expect(await names('NetworkPolicy', 'networking.k8s.io/v1')).toEqual([
      'allow-api-to-grader',
      'allow-grader-store-ingress',
      'allow-grader-to-grader-store',
      'allow-platform-ingress',
      'allow-same-namespace',
      'allow-seed-dns',
      'default-deny',
    ]);
    expect(await names('ResourceQuota')).toEqual(['sandbox-quota']);
    const binding = await client.get<
      KubeObject & { roleRef: { name: string }; subjects: Array<{ name: string }> }
    >(resourceFor('rbac.authorization.k8s.io/v1', 'RoleBinding'), ns, 'epreuve-api-sandbox-reader');
    expect(binding?.roleRef.name).toBe('epreuve-sandbox-reader');
    expect(binding?.subjects[0]?.name).toBe('epreuve-api');
    const sa = await client.get<KubeObject>(resourceFor('v1', 'ServiceAccount'), ns, 'sandbox');
    expect(sa?.automountServiceAccountToken).toBe(false);
    // The real controllers created pods from our workloads, and Pod Security admitted them.
    await eventually(async () => expect((await names('Pod')).length).toBe(6));
  });

  it('becomes Ready when its pods report ready (test stands in for the kubelet)', async () => {
    const ns = candidateNamespace(team, 'alice');
    // Nothing runs pods here, so nothing is ready until the test says so.
    expect((await get('alice'))?.status?.phase).toBe('Provisioning');
    // The six pods the previous test saw (two databases, the grader store, the data API, the
    // grader, the seed Job), none reported yet.
    expect(await reportPodsReady(client, ns)).toBe(6);
    const a = await eventually(async () => {
      await reportPodsReady(client, ns); // pods created late by their controllers get reported too
      const got = await get('alice');
      expect(got?.status?.phase).toBe('Ready');
      return got!;
    }, 60_000);
    expect(condition(a, 'Ready')).toMatchObject({ status: 'True', reason: 'SandboxesReady' });
    expect(a.status?.sandboxes?.every((s) => s.ready)).toBe(true);
    expect(a.status?.readyAt).toBeTruthy();
    expect(await operator.metric('epreuve_time_to_ready_seconds_count')).toBeGreaterThanOrEqual(1);
  });

  it('restores a managed object deleted or edited by hand', async () => {
    const ns = candidateNamespace(team, 'alice');
    const NP = resourceFor('networking.k8s.io/v1', 'NetworkPolicy');
    const QUOTA = resourceFor('v1', 'ResourceQuota');
    const SVC = resourceFor('v1', 'Service');
    type Spec = KubeObject & { spec: Record<string, unknown> };
    // The operator caches Services and policies as a digest of their spec: edits of it must show.
    const policyBefore = (await client.get<Spec>(NP, ns, 'allow-platform-ingress'))!.spec;
    const serviceBefore = (await client.get<Spec>(SVC, ns, 'warehouse'))!.spec as { ports: object[] };
    await client.delete(NP, ns, 'default-deny');
    await client.mergePatch(QUOTA, ns, 'sandbox-quota', { spec: { hard: { 'limits.cpu': '64' } } });
    // Any pod of any namespace may now reach the sandboxes, and the Service sends to another port.
    const edited = await client.mergePatch<Spec>(NP, ns, 'allow-platform-ingress', {
      spec: { ingress: [{ from: [{ namespaceSelector: {} }] }] },
    });
    await client.mergePatch(SVC, ns, 'warehouse', {
      spec: { ports: serviceBefore.ports.map((p) => ({ ...p, targetPort: 9999 })) },
    });
    // The edit as the API server stored it: a read after it may already see the operator's repair.
    expect(edited.spec).not.toEqual(policyBefore);
    await eventually(async () => {
      expect((await client.get<Spec>(NP, ns, 'allow-platform-ingress'))!.spec).toEqual(policyBefore);
      expect((await client.get<Spec>(SVC, ns, 'warehouse'))!.spec).toEqual(serviceBefore);
      expect(await client.get(NP, ns, 'default-deny')).toBeDefined();
      const quota = await client.get<KubeObject & { spec: { hard: Record<string, string> } }>(
        QUOTA,
        ns,
        'sandbox-quota',
      );
      expect(quota?.spec.hard['limits.cpu']).toBe('2250m'); // the template's 2 and the store's 250m
    });
  });

  it('deletes the namespace, waits until it is really gone, then releases the Assessment', async () => {
    const ns = candidateNamespace(team, 'alice');
    // Our own finalizer holds the namespace, so the order can be observed, not raced.
    const HOLD = 'test.epreuve.dev/hold';
    await client.mergePatch(NS, undefined, ns, { metadata: { finalizers: [HOLD] } });

    // Read the Assessment before the namespace: "Assessment gone, namespace there" then proves the
    // Assessment went first, whatever happened between the two reads.
    const seen: Array<{ assessment?: Asmt; namespace?: KubeObject }> = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const assessment = await get('alice');
        const namespace = await client.get<KubeObject>(NS, undefined, ns);
        seen.push({ assessment, namespace });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    await client.delete(ASMT, team, 'alice');
    const terminating = await waitPhase('alice', 'Terminating');
    expect(terminating.metadata.deletionTimestamp).toBeTruthy();
    expect(terminating.metadata.finalizers).toContain('epreuve.dev/cleanup');
    expect(condition(terminating, 'Ready')).toMatchObject({ status: 'False', reason: 'Terminating' });
    // The operator deleted the namespace, and keeps the Assessment while the namespace exists.
    await eventually(async () =>
      expect((await client.get(NS, undefined, ns))?.metadata.deletionTimestamp).toBeTruthy(),
    );
    await new Promise((r) => setTimeout(r, 2000));
    expect((await get('alice'))?.metadata.finalizers).toContain('epreuve.dev/cleanup');

    await client.mergePatch(NS, undefined, ns, { metadata: { finalizers: null } });
    await eventually(async () => {
      expect(await client.get(NS, undefined, ns)).toBeUndefined();
      expect(await get('alice')).toBeUndefined();
    }, 90_000);
    watching = false;
    await watch;

    expect(seen.filter((s) => !s.assessment && s.namespace)).toEqual([]);
    for (const s of seen.filter((s) => s.namespace))
      expect(s.assessment?.metadata.finalizers).toContain('epreuve.dev/cleanup');
    expect(seen.some((s) => s.assessment && s.namespace)).toBe(true);
    // (A read in flight when the poll stopped may still show the Assessment: read afresh.)
    expect({ assessment: await get('alice'), namespace: await client.get(NS, undefined, ns) }).toEqual({
      assessment: undefined,
      namespace: undefined,
    });
  });
});

describe('lifecycle', () => {
  it('expires at the deadline, deletes the namespace, and an extension moves the deadline', async () => {
    // OnFirstAccess with an arrival 59m50s ago and a 1h duration: the deadline is 10 s away.
    const arrived = new Date(Date.now() - 3590_000).toISOString();
    await create(
      'bob',
      { startPolicy: 'OnFirstAccess', duration: '1h' },
      { annotations: { 'epreuve.dev/candidate-arrived-at': arrived } },
    );
    const running = await waitPhase('bob', 'Provisioning');
    const first = Date.parse(running.status!.expiresAt!);
    expect(Math.abs(first - (Date.parse(arrived) + 3600_000))).toBeLessThan(1000);

    // Extend by an hour: the deadline moves, nothing expires.
    await client.mergePatch(ASMT, team, 'bob', { spec: { duration: '2h' } });
    await eventually(async () => {
      const a = await get('bob');
      expect(Date.parse(a!.status!.expiresAt!)).toBe(first + 3600_000);
    });

    // Shrink it back: the old deadline has passed by now or soon will — it expires.
    await client.mergePatch(ASMT, team, 'bob', { spec: { duration: '1h' } });
    const expired = await waitPhase('bob', 'Expired', 30_000);
    expect(condition(expired, 'Expired')).toMatchObject({ status: 'True', reason: 'DeadlineReached' });
    await eventually(
      async () => expect(await client.get(NS, undefined, candidateNamespace(team, 'bob'))).toBeUndefined(),
      90_000,
    );
    expect(
      await operator.metric('epreuve_expired_total', { reason: 'DeadlineReached' }),
    ).toBeGreaterThanOrEqual(1);
  }, 150_000);

  it('revoking ends the assessment at once', async () => {
    await create('carol');
    await waitPhase('carol', 'Provisioning');
    await client.mergePatch(ASMT, team, 'carol', { spec: { revoked: true } });
    const a = await waitPhase('carol', 'Expired');
    expect(condition(a, 'Expired')?.reason).toBe('Revoked');
  });

  it('starts the clock only when the candidate arrives (OnFirstAccess)', async () => {
    await create('dave', { startPolicy: 'OnFirstAccess' });
    const a = await waitPhase('dave', 'Provisioning');
    expect(a.status?.expiresAt).toBeUndefined();
    expect(condition(a, 'Expired')?.reason).toBe('NotStarted');
    const arrived = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await client.mergePatch(ASMT, team, 'dave', {
      metadata: { annotations: { 'epreuve.dev/candidate-arrived-at': arrived } },
    });
    await eventually(async () =>
      expect((await get('dave'))?.status?.expiresAt).toBe(
        new Date(Date.parse(arrived) + 4 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
      ),
    );
  });
});

describe('failures are reported, and do not hot-loop', () => {
  /**
   * How often the operator reconciled one assessment in `ms` (its debug line `reconciled`, by key):
   * a failure that hot-loops reconciles its key again and again. Counted per key, not as the
   * operator's requests: this operator watches the whole cluster, and what the files run before
   * this one left behind (namespaces terminating, pool members going) is reconciled now and then.
   */
  const reconcileOf = (name: string) => (line: string) =>
    line.includes('"msg":"reconciled"') && line.includes(`"key":"${team}/${name}"`);
  /**
   * The assessment's reconciles in a window of `ms`, once the passes its own last writes caused
   * are done (each write comes back once through the watch, and may land just after the phase the
   * test waited for): a hot loop never settles, and then fails the count.
   */
  async function reconcilesDuring(name: string, ms: number): Promise<number> {
    for (let i = 0; i < 10; i++) {
      const settling = operator.countLines(reconcileOf(name));
      await new Promise((r) => setTimeout(r, 1000));
      if (settling() === 0) break;
    }
    const count = operator.countLines(reconcileOf(name));
    await new Promise((r) => setTimeout(r, ms));
    return count();
  }

  it('TemplateNotFound, then provisions as soon as the template appears (no polling)', async () => {
    await create('erin', { templateRef: { name: 'later' } });
    const a = await waitPhase('erin', 'Pending');
    expect(condition(a, 'Ready')).toMatchObject({
      reason: 'TemplateNotFound',
      message: expect.stringContaining(`${team}/later`),
    });
    const erin = operator.countLines(reconcileOf('erin'));
    expect(await reconcilesDuring('erin', 5000)).toBe(0);
    await client.apply(
      { ...sample('data-engineer.yaml'), metadata: { name: 'later', namespace: team } } as KubeObject,
      { fieldManager: 'test' },
    );
    await waitPhase('erin', 'Provisioning');
    // The count the quiet window read does see erin's reconciles: the template's arrival made some.
    // Waited for: the status write can be seen before the reconcile's log line reaches the reader.
    await eventually(async () => expect(erin()).toBeGreaterThan(0));
  });

  it('QuotaExceeded names what is short, and stays quiet', async () => {
    const tiny = sample<KubeObject & { spec: Record<string, unknown> }>('data-engineer.yaml');
    await client.apply(
      {
        ...tiny,
        metadata: { name: 'tiny', namespace: team },
        spec: { ...tiny.spec, resources: { cpu: '1', memory: '1Gi', storage: '5Gi' } },
      } as KubeObject,
      { fieldManager: 'test' },
    );
    await create('frank', { templateRef: { name: 'tiny' } });
    const a = await waitPhase('frank', 'Failed');
    expect(condition(a, 'Ready')).toMatchObject({
      reason: 'QuotaExceeded',
      // Three sandboxes, the seed Job and the grader.
      message: expect.stringMatching(/cpu: sandboxes need 2 but resources.cpu is 1/),
    });
    expect(await client.get(NS, undefined, candidateNamespace(team, 'frank'))).toBeUndefined();
    expect(await reconcilesDuring('frank', 5000)).toBe(0);
  });

  it('DurationExceedsMax when an extension goes past the template maximum', async () => {
    await create('gina', { duration: '9h' });
    const a = await waitPhase('gina', 'Failed');
    expect(condition(a, 'Ready')?.reason).toBe('DurationExceedsMax');
  });
});

describe('template protection', () => {
  it('keeps a template in use until its last running assessment is gone', async () => {
    const ATPL = KINDS.AssessmentTemplate;
    await client.apply(
      { ...sample('data-engineer.yaml'), metadata: { name: 'protected', namespace: team } } as KubeObject,
      { fieldManager: 'test' },
    );
    await create('hank', { templateRef: { name: 'protected' } });
    await waitPhase('hank', 'Provisioning');
    type Tpl = KubeObject & {
      status?: { conditions?: Array<{ type: string; status: string; message: string }> };
    };
    await eventually(async () => {
      const t = await client.get<Tpl>(ATPL, team, 'protected');
      expect(t?.metadata.finalizers).toContain('epreuve.dev/template-protection');
      expect(t?.status?.conditions?.find((c) => c.type === 'InUse')).toMatchObject({
        status: 'True',
        message: expect.stringContaining('hank'),
      });
    });
    await client.delete(ATPL, team, 'protected');
    await new Promise((r) => setTimeout(r, 2000));
    const held = await client.get<Tpl>(ATPL, team, 'protected');
    expect(held?.metadata.deletionTimestamp).toBeTruthy();
    expect((await get('hank'))?.status?.phase).toBe('Provisioning');
    await client.delete(ASMT, team, 'hank');
    await eventually(async () => expect(await client.get(ATPL, team, 'protected')).toBeUndefined(), 90_000);
  }, 120_000);
});
