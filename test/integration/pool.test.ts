import { candidateNamespace, KINDS, LABELS } from '@epreuve/crds';
import { type KubeObject, resourceFor } from '@epreuve/kube';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { assessmentObject, sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { reportPodsReady } from '../harness/kubelet-stand-in.ts';
import { OperatorProcess } from '../harness/operator.ts';

/**
 * Warm pools against a real API server and controller manager: the pool fills to min, a claim
 * binds a ready member (credentials rotated, status.namespace and status.pool written), the pool
 * refills after a claim and after a deletion, a template change replaces stale members, lowering
 * min drains nothing, two assessments racing for the last member get one each way, and an
 * operator restarted between a claim and its status write adopts the claim. Nothing runs pods
 * here: the test reports them ready (kubelet-stand-in), as operator.test.ts does.
 */
const kubeconfig = inject('kubeconfig');
const client = kube(kubeconfig);
const NS = resourceFor('v1', 'Namespace');
const SECRET = resourceFor('v1', 'Secret');
const JOB = resourceFor('batch/v1', 'Job');
const TEMPLATE = 'pooled';

type Asmt = KubeObject & {
  status?: { phase?: string; namespace?: string; pool?: { template: string; claimedAt: string } };
};
type Tpl = KubeObject & {
  spec: Record<string, unknown>;
  status?: { pool?: { desired: number; ready: number; building: number; claimed: number } };
};

let team: string;
let operator: OperatorProcess;

const template = (pool: Record<string, number>) =>
  ({
    ...sample<{ spec: Record<string, unknown> }>('data-engineer.yaml'),
    metadata: { name: TEMPLATE, namespace: team },
    spec: { ...sample<{ spec: Record<string, unknown> }>('data-engineer.yaml').spec, pool },
  }) as unknown as KubeObject;

const setPool = (pool: Record<string, number | null>) =>
  client.mergePatch(KINDS.AssessmentTemplate, team, TEMPLATE, { spec: { pool } });

/** The pool's namespaces (not being deleted); `unclaimed` leaves claimed ones out. */
async function members(which: 'all' | 'unclaimed' | 'ready' = 'unclaimed'): Promise<KubeObject[]> {
  const list = await client.list<KubeObject>(NS, {
    labelSelector: `${LABELS.pool}=${TEMPLATE},${LABELS.ownerNamespace}=${team}`,
  });
  return list.items.filter((ns) => {
    if (ns.metadata.deletionTimestamp) return false;
    const state = ns.metadata.labels?.[LABELS.poolState];
    if (which === 'unclaimed') return state !== 'claimed';
    if (which === 'ready') return state === 'ready';
    return true;
  });
}

/** Reports every unclaimed member's pods ready until `n` members are labelled ready. */
async function poolReady(n: number, timeoutMs = 60_000): Promise<KubeObject[]> {
  return eventually(async () => {
    for (const ns of await members('unclaimed')) await reportPodsReady(client, ns.metadata.name!);
    const ready = await members('ready');
    expect(ready.length).toBe(n);
    return ready;
  }, timeoutMs);
}

const get = (name: string) => client.get<Asmt>(KINDS.Assessment, team, name);
const create = (name: string) =>
  client.create(assessmentObject(team, name, { templateRef: { name: TEMPLATE } }) as KubeObject);
const secretValue = async (ns: string, secret: string, key: string) => {
  const s = await client.get<KubeObject & { data: Record<string, string> }>(SECRET, ns, secret);
  return Buffer.from(s!.data[key]!, 'base64').toString();
};

beforeAll(async () => {
  team = await createTestNamespace(kubeconfig, 'pool');
  await client.apply(template({ min: 2 }), { fieldManager: 'test' });
  operator = await new OperatorProcess(kubeconfig, { EPREUVE_LEADER_ELECT: 'false' }).start();
});

afterAll(async () => {
  await operator?.stop();
  await client.delete(NS, undefined, team);
});

describe('a warm pool', () => {
  let firstReady: string[];

  it('fills to min: members built like a cold start, bound to nobody, then labelled ready', async () => {
    const built = await eventually(async () => {
      const m = await members();
      expect(m.length).toBe(2);
      return m;
    });
    for (const ns of built) {
      expect(ns.metadata.name).toMatch(/^epreuve-pool-[a-z0-9]{6}-[a-z0-9]{5}$/);
      expect(ns.metadata.labels).toMatchObject({
        'app.kubernetes.io/managed-by': 'epreuve',
        'pod-security.kubernetes.io/enforce': 'restricted',
      });
      expect(ns.metadata.labels?.[LABELS.assessment]).toBeUndefined();
      // The namespace comes first, its objects right after.
      await eventually(async () => {
        const jobs = await client.list<KubeObject>(JOB, { namespace: ns.metadata.name });
        expect(jobs.items.map((j) => j.metadata.name)).toEqual(['seed']);
      });
    }
    firstReady = (await poolReady(2)).map((ns) => ns.metadata.name!).sort();
    expect(firstReady).toEqual(built.map((ns) => ns.metadata.name!).sort());
    await eventually(async () => {
      const t = await client.get<Tpl>(KINDS.AssessmentTemplate, team, TEMPLATE);
      expect(t?.status?.pool).toMatchObject({ desired: 2, ready: 2, building: 0, claimed: 0 });
    });
  });

  it('is claimed by a new assessment: its namespace, new credentials, Ready once rotated', async () => {
    const before = Object.fromEntries(
      await Promise.all(
        firstReady.map(async (ns) => [ns, await secretValue(ns, 'warehouse-credentials', 'password')]),
      ),
    );
    await create('ada');
    const a = await eventually(async () => {
      const got = await get('ada');
      expect(got?.status?.pool?.template).toBe(TEMPLATE);
      return got!;
    });
    const ns = a.status!.namespace!;
    // The oldest free member, claimed as it was: no cold namespace was made for it.
    expect(firstReady).toContain(ns);
    expect(await client.get(NS, undefined, candidateNamespace(team, 'ada'))).toBeUndefined();
    const claimed = await client.get<KubeObject>(NS, undefined, ns);
    expect(claimed?.metadata.labels).toMatchObject({
      [LABELS.poolState]: 'claimed',
      [LABELS.assessment]: 'ada',
    });
    expect(claimed?.metadata.annotations?.['epreuve.dev/owner']).toBe(`${team}/ada`);
    // The candidate's credentials changed at the claim; the rotate Job sets them in the databases.
    expect(await secretValue(ns, 'warehouse-credentials', 'password')).not.toBe(before[ns]);
    expect(await secretValue(ns, 'events-credentials', 'password')).toBeTruthy();
    expect(await client.get(JOB, ns, 'rotate')).toBeDefined();
    // Not Ready before the rotation ran: the old password may still work until then.
    expect((await get('ada'))?.status?.phase).toBe('Provisioning');
    const ready = await eventually(async () => {
      await reportPodsReady(client, ns);
      const got = await get('ada');
      expect(got?.status?.phase).toBe('Ready');
      return got!;
    });
    expect(ready.status?.namespace).toBe(ns);
    expect(JSON.stringify(ready.status)).toContain(`warehouse.${ns}.svc`);
    expect(await operator.metric('epreuve_pool_claims_total', { result: 'claimed' })).toBe(1);
  });

  it('refills after the claim', async () => {
    await eventually(async () => expect((await members('unclaimed')).length).toBe(2));
    await poolReady(2);
    await eventually(async () => {
      const t = await client.get<Tpl>(KINDS.AssessmentTemplate, team, TEMPLATE);
      expect(t?.status?.pool).toMatchObject({ desired: 2, ready: 2, claimed: 1 });
    });
  });

  it('refills after a member is deleted', async () => {
    const [gone] = await members('ready');
    await client.delete(NS, undefined, gone!.metadata.name!);
    await eventually(async () => {
      const m = await members('unclaimed');
      expect(m.map((ns) => ns.metadata.name)).not.toContain(gone!.metadata.name);
      expect(m.length).toBe(2);
    });
    await poolReady(2);
  });

  it('replaces stale members when the template changes, and keeps claimed ones', async () => {
    const oldMembers = await members('unclaimed');
    const old = oldMembers.map((ns) => ns.metadata.name);
    const oldHash = oldMembers[0]!.metadata.labels?.[LABELS.templateHash];
    expect(oldHash).toMatch(/^[a-z0-9]{10}$/);
    await client.mergePatch(KINDS.AssessmentTemplate, team, TEMPLATE, { spec: { duration: '3h' } });
    const fresh = await eventually(async () => {
      const m = await members('unclaimed');
      expect(m.length).toBe(2);
      for (const ns of m) {
        expect(old).not.toContain(ns.metadata.name);
        expect(ns.metadata.labels?.[LABELS.templateHash]).not.toBe(oldHash);
      }
      return m;
    });
    expect(fresh.length).toBe(2);
    expect((await get('ada'))?.status?.phase).toBe('Ready'); // the claimed one is the assessment's
    await poolReady(2);
  });

  it('does not drain healthy members when min is lowered', async () => {
    await setPool({ min: 1 });
    await eventually(async () => {
      const t = await client.get<Tpl>(KINDS.AssessmentTemplate, team, TEMPLATE);
      expect(t?.status?.pool?.desired).toBe(1);
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await members('ready')).length).toBe(2);
  });

  it('never holds more than max: members above it go', async () => {
    await setPool({ min: 1, max: 1 });
    await eventually(async () => expect((await members('unclaimed')).length).toBe(1));
    await poolReady(1);
  });

  it('gives the last member to one of two racing assessments; the other starts cold', async () => {
    const [last] = await members('ready');
    await Promise.all([create('race-a'), create('race-b')]);
    const [a, b] = await eventually(async () => {
      const got = await Promise.all([get('race-a'), get('race-b')]);
      for (const x of got) expect(x?.status?.namespace).toBeTruthy();
      return got as Asmt[];
    });
    const winners = [a!, b!].filter((x) => x.status?.pool);
    expect(winners.length).toBe(1);
    expect(winners[0]!.status!.namespace).toBe(last!.metadata.name);
    const loser = [a!, b!].find((x) => !x.status?.pool)!;
    expect(loser.status?.namespace).toBe(candidateNamespace(team, loser.metadata.name!));
    const claimedBy = (await members('all')).filter(
      (ns) => ns.metadata.labels?.[LABELS.poolState] === 'claimed',
    );
    // Each claimed namespace is claimed by exactly one assessment, and each assessment has one.
    const owners = claimedBy.map((ns) => ns.metadata.labels?.[LABELS.assessment]).sort();
    expect(owners).toEqual(['ada', winners[0]!.metadata.name].sort());
  });

  it('adopts a claim made just before an operator restart, and claims nothing twice', async () => {
    await poolReady(1);
    await operator.stop();
    // The claim patch as the operator makes it, then a crash before the status write.
    const [member] = await members('ready');
    await client.mergePatch(NS, undefined, member!.metadata.name!, {
      metadata: {
        resourceVersion: member!.metadata.resourceVersion,
        labels: { [LABELS.poolState]: 'claimed', [LABELS.assessment]: 'crash' },
        annotations: { 'epreuve.dev/owner': `${team}/crash` },
      },
    });
    await create('crash');
    await create('after-crash');
    operator = await new OperatorProcess(kubeconfig, { EPREUVE_LEADER_ELECT: 'false' }).start();
    const crash = await eventually(async () => {
      const got = await get('crash');
      expect(got?.status?.namespace).toBeTruthy();
      return got!;
    });
    expect(crash.status?.namespace).toBe(member!.metadata.name);
    expect(crash.status?.pool?.template).toBe(TEMPLATE);
    const after = await eventually(async () => {
      const got = await get('after-crash');
      expect(got?.status?.namespace).toBeTruthy();
      return got!;
    });
    expect(after.status?.namespace).not.toBe(member!.metadata.name);
    const claims = (await members('all'))
      .filter((ns) => ns.metadata.labels?.[LABELS.poolState] === 'claimed')
      .map((ns) => ns.metadata.labels?.[LABELS.assessment]);
    expect(claims.filter((c) => c === 'crash')).toHaveLength(1);
    expect(new Set(claims).size).toBe(claims.length);
    expect(await client.get(JOB, crash.status!.namespace!, 'rotate')).toBeDefined();
  });

  it('never deletes a member that changed since it was read: the delete carries its resourceVersion', async () => {
    // What the pool controller relies on when a claim lands between its cache read and its delete.
    const name = `${team}-precondition`;
    const created = await client.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    });
    await client.mergePatch(NS, undefined, name, { metadata: { labels: { [LABELS.poolState]: 'claimed' } } });
    await expect(
      client.delete(NS, undefined, name, { resourceVersion: created.metadata.resourceVersion }),
    ).rejects.toMatchObject({ code: 409 });
    expect((await client.get<KubeObject>(NS, undefined, name))?.metadata.deletionTimestamp).toBeUndefined();
    expect(await client.delete(NS, undefined, name)).toBe(true);
  });

  it('deletes a claimed namespace with its assessment, and unclaimed ones when the pool goes', async () => {
    const ns = (await get('ada'))!.status!.namespace!;
    await client.delete(KINDS.Assessment, team, 'ada');
    await eventually(async () => {
      const gone = await client.get<KubeObject>(NS, undefined, ns);
      expect(gone === undefined || gone.metadata.deletionTimestamp !== undefined).toBe(true);
    });
    await client.jsonPatch(KINDS.AssessmentTemplate, team, TEMPLATE, [{ op: 'remove', path: '/spec/pool' }]);
    await eventually(async () => expect(await members('unclaimed')).toHaveLength(0));
    await eventually(async () => {
      const t = await client.get<Tpl>(KINDS.AssessmentTemplate, team, TEMPLATE);
      expect(t?.status?.pool).toBeUndefined();
    });
  });
});
