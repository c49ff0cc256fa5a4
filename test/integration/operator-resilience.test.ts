import { KINDS } from '@epreuve/crds';
import { type KubeObject, resourceFor } from '@epreuve/kube';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { candidateNamespace } from '../../crds/src/index.ts';
import { MANAGED_KINDS } from '../../operator/src/assessment/reconciler.ts';
import { assessmentObject, sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { reportPodsReady } from '../harness/kubelet-stand-in.ts';
import { OperatorProcess } from '../harness/operator.ts';

/** Crashes, failover and steady state: the operator as ops will see it. */
const kubeconfig = inject('kubeconfig');
const client = kube(kubeconfig);
const ASMT = KINDS.Assessment;
const NS = resourceFor('v1', 'Namespace');
const LEASE = resourceFor('coordination.k8s.io/v1', 'Lease');
type Asmt = KubeObject & {
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
};

let team: string;
const operators: OperatorProcess[] = [];
const operator = (env: Record<string, string> = {}) => {
  const op = new OperatorProcess(kubeconfig, { EPREUVE_LEADER_ELECT: 'false', ...env });
  operators.push(op);
  return op.start();
};

beforeAll(async () => {
  team = await createTestNamespace(kubeconfig, 'resilience');
  await client.apply(
    { ...sample('data-engineer.yaml'), metadata: { name: 'data-engineer', namespace: team } } as KubeObject,
    { fieldManager: 'test' },
  );
});
afterEach(async () => {
  await Promise.all(operators.splice(0).map((o) => o.stop()));
});
afterAll(async () => {
  await client.delete(NS, undefined, team);
});

const provisioned = (a: Asmt | undefined) =>
  a?.status?.conditions?.some((c) => c.type === 'Provisioned' && c.status === 'True');

async function assessmentsIn(names: string[]): Promise<Asmt[]> {
  return (await client.list<Asmt>(ASMT, { namespace: team })).items.filter((a) =>
    names.includes(a.metadata.name!),
  );
}

/** Managed objects of every kind (all, or those of the given namespaces): `Kind ns/name` → resourceVersion. */
async function managedObjects(namespaces?: Set<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [apiVersion, kind] of MANAGED_KINDS) {
    const list = await client.list<KubeObject>(resourceFor(apiVersion, kind), {
      labelSelector: 'app.kubernetes.io/managed-by=epreuve',
    });
    for (const o of list.items)
      if (!namespaces || namespaces.has(o.metadata.namespace ?? o.metadata.name!))
        out.set(`${kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`, o.metadata.resourceVersion!);
  }
  return out;
}

describe('a crashed operator', () => {
  it('killed (SIGKILL) mid-provision, a new one converges with no duplicates and no orphans', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `crash-${i}`);
    // Kill the first operator as soon as it has created the first (then the third) candidate
    // namespace: provisioning is under way, objects half applied.
    for (const [round, killAtNamespaces] of [
      [0, 1],
      [1, 3],
    ] as const) {
      const batch = names.slice(round * 4, round * 4 + 4);
      const first = await operator();
      for (const n of batch) await client.create(assessmentObject(team, n) as KubeObject);
      await eventually(
        async () => {
          const started = await client.list<KubeObject>(NS, {
            labelSelector: `epreuve.dev/owner-namespace=${team}`,
          });
          expect(
            started.items.filter((n) => batch.includes(n.metadata.labels!['epreuve.dev/assessment']!)).length,
          ).toBeGreaterThanOrEqual(killAtNamespaces);
        },
        30_000,
        20,
      );
      await first.kill('SIGKILL');
      const second = await operator();
      await eventually(
        async () => expect((await assessmentsIn(batch)).filter(provisioned)).toHaveLength(batch.length),
        60_000,
      );
      await second.stop();
    }
    const objects = [...(await managedObjects()).keys()];
    for (const n of names) {
      const ns = candidateNamespace(team, n);
      const inNs = objects
        .filter((k) => k.includes(` ${ns}/`))
        .map((k) => k.replace(` ${ns}/`, ' '))
        .sort();
      expect(inNs).toEqual(
        [
          'Deployment grader',
          'Deployment source',
          'Job seed',
          'LimitRange sandbox-limits',
          'NetworkPolicy allow-api-to-grader',
          'NetworkPolicy allow-grader-store-ingress',
          'NetworkPolicy allow-grader-to-grader-store',
          'NetworkPolicy allow-platform-ingress',
          'NetworkPolicy allow-same-namespace',
          'NetworkPolicy allow-seed-dns',
          'NetworkPolicy default-deny',
          'ResourceQuota sandbox-quota',
          'RoleBinding epreuve-api-sandbox-reader',
          'Service events',
          'Service grader',
          'Service grader-store',
          'Service source',
          'Service warehouse',
          'ServiceAccount sandbox',
          'ServiceAccount seeder',
          'StatefulSet events',
          'StatefulSet grader-store',
          'StatefulSet warehouse',
        ].sort(),
      );
      const secrets = await client.list<KubeObject>(resourceFor('v1', 'Secret'), { namespace: ns });
      expect(secrets.items.map((s) => s.metadata.name).sort()).toEqual([
        'events-credentials',
        'grader-credentials',
        'grader-store-credentials',
        'source-credentials',
        'warehouse-credentials',
      ]);
    }
    // No orphans: every managed namespace of this team belongs to an existing assessment.
    const namespaces = await client.list<KubeObject>(NS, {
      labelSelector: `epreuve.dev/owner-namespace=${team}`,
    });
    const owners = namespaces.items.map((n) => n.metadata.labels!['epreuve.dev/assessment']).sort();
    expect(owners).toEqual([...names].sort());
  }, 180_000);
});

describe('leader election', () => {
  it('exactly one of two replicas reconciles; when it dies the other takes over', async () => {
    const env = {
      EPREUVE_LEADER_ELECT: 'true',
      EPREUVE_LEADER_ELECTION_NAMESPACE: team,
      EPREUVE_LEADER_ELECTION_ID: 'epreuve-operator',
    };
    const a = await operator({ ...env, EPREUVE_POD_NAME: 'replica-a' });
    const b = await operator({ ...env, EPREUVE_POD_NAME: 'replica-b' });
    const leaderOf = async () =>
      (await client.get<KubeObject & { spec: { holderIdentity?: string } }>(LEASE, team, 'epreuve-operator'))
        ?.spec.holderIdentity;
    const leaderName = await eventually(async () => {
      const holder = await leaderOf();
      expect(['replica-a', 'replica-b']).toContain(holder);
      return holder!;
    });
    const [leader, standby] = leaderName === 'replica-a' ? [a, b] : [b, a];
    await eventually(async () => expect(await leader.metric('leader_election_master_status')).toBe(1));

    await client.create(assessmentObject(team, 'ha-1') as KubeObject);
    await eventually(async () => expect(provisioned(await client.get<Asmt>(ASMT, team, 'ha-1'))).toBe(true));
    expect(await leader.metric('controller_runtime_reconcile_total')).toBeGreaterThan(0);
    expect(await standby.metric('controller_runtime_reconcile_total')).toBe(0);
    expect(await standby.metric('leader_election_master_status')).toBe(0);

    const killedAt = Date.now();
    await leader.kill('SIGKILL');
    await client.create(assessmentObject(team, 'ha-2') as KubeObject);
    await eventually(
      async () => expect(provisioned(await client.get<Asmt>(ASMT, team, 'ha-2'))).toBe(true),
      40_000,
    );
    expect(await leaderOf()).toBe(leaderName === 'replica-a' ? 'replica-b' : 'replica-a');
    // The lease had to expire (15 s) before the standby could take it.
    expect(Date.now() - killedAt).toBeGreaterThan(10_000);
  }, 90_000);

  it('a leader stopped gracefully releases the lease, so the standby takes over at once', async () => {
    const env = {
      EPREUVE_LEADER_ELECT: 'true',
      EPREUVE_LEADER_ELECTION_NAMESPACE: team,
      EPREUVE_LEADER_ELECTION_ID: 'graceful',
    };
    const a = await operator({ ...env, EPREUVE_POD_NAME: 'graceful-a' });
    await eventually(async () => expect(await a.metric('leader_election_master_status')).toBe(1));
    const b = await operator({ ...env, EPREUVE_POD_NAME: 'graceful-b' });
    const stoppedAt = Date.now();
    await a.stop();
    await eventually(async () => expect(await b.metric('leader_election_master_status')).toBe(1), 15_000);
    expect(Date.now() - stoppedAt).toBeLessThan(8000);
  }, 60_000);
});

/** One line on why an assessment is not Ready: its Ready condition and its namespace's warnings. */
async function explain(a: Asmt): Promise<string> {
  const ready = a.status?.conditions?.find((c) => c.type === 'Ready');
  const events = await client.list<KubeObject & { type?: string; reason?: string; message?: string }>(
    resourceFor('v1', 'Event'),
    { namespace: candidateNamespace(team, a.metadata.name!) },
  );
  const warnings = events.items.filter((e) => e.type === 'Warning').map((e) => `${e.reason}: ${e.message}`);
  return `${a.metadata.name} ${a.status?.phase} (${JSON.stringify(ready)}); ${warnings.join(' | ')}`;
}

describe('steady state', () => {
  it('with 50 Ready assessments, writes nothing for 2 minutes (resourceVersions unchanged)', async () => {
    const op = await operator({ EPREUVE_RESYNC_SECONDS: '30' });
    const names = Array.from({ length: 50 }, (_, i) => `steady-${i}`);
    for (const n of names) await client.create(assessmentObject(team, n) as KubeObject);
    const started = Date.now();
    await eventually(
      async () => {
        for (const n of names) await reportPodsReady(client, candidateNamespace(team, n));
        const waiting = (await assessmentsIn(names)).filter((a) => a.status?.phase !== 'Ready');
        // Late on, say why: the Ready condition and the candidate namespace's warnings.
        const why = Date.now() - started > 120_000 ? await Promise.all(waiting.map(explain)) : [];
        expect(
          waiting.map((a) => a.metadata.name),
          why.join('\n'),
        ).toEqual([]);
      },
      240_000,
      2000,
    );
    // Let controllers finish their last status updates before taking the snapshot.
    await new Promise((r) => setTimeout(r, 5000));
    // Only these candidate namespaces: elsewhere the controller manager may legitimately write
    // (quota status when an earlier test's seed pods time out). The operator's own request
    // metrics below cover every namespace.
    const steady = new Set(names.map((n) => candidateNamespace(team, n)));
    const before = await managedObjects(steady);
    expect(before.size).toBeGreaterThanOrEqual(names.length * 5);
    const assessmentsBefore = new Map(
      (await assessmentsIn(names)).map((a) => [a.metadata.name, a.metadata.resourceVersion]),
    );
    const writesBefore = await op.metric('epreuve_managed_object_writes_total');
    const mutatingBefore = await mutatingRequests(op);
    const resyncsBefore = await op.metric('controller_runtime_reconcile_total', { controller: 'assessment' });

    await new Promise((r) => setTimeout(r, 120_000));

    const after = await managedObjects(steady);
    const changed = [...before].filter(([k, rv]) => after.get(k) !== rv).map(([k]) => k);
    expect(changed).toEqual([]);
    expect(after.size).toBe(before.size);
    const assessmentsAfter = new Map(
      (await assessmentsIn(names)).map((a) => [a.metadata.name, a.metadata.resourceVersion]),
    );
    expect(assessmentsAfter).toEqual(assessmentsBefore);
    expect(await op.metric('epreuve_managed_object_writes_total')).toBe(writesBefore);
    expect(await mutatingRequests(op)).toBe(mutatingBefore);
    // It did look: periodic resyncs reconciled every assessment several times, and wrote nothing.
    expect(
      (await op.metric('controller_runtime_reconcile_total', { controller: 'assessment' })) - resyncsBefore,
    ).toBeGreaterThanOrEqual(3 * names.length);
  }, 480_000);
});

async function mutatingRequests(op: OperatorProcess): Promise<number> {
  let n = 0;
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'])
    n += await op.metric('rest_client_requests_total', { method });
  return n;
}
