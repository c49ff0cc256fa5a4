import { FIELD_MANAGER } from '@epreuve/crds';
import { type Informer, type KubeClient, type KubeObject, objectKey } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../metrics.ts';
import { APPLIED_ANNOTATION, Applier, appliedDigest, cachedView, specDigest } from './apply.ts';

const sts = (image = 'postgres:18', replicas = 1): KubeObject =>
  ({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'warehouse', namespace: 'epreuve-jane-x1', labels: { app: 'warehouse' } },
    spec: { replicas, template: { spec: { containers: [{ name: 'postgres', image }] } } },
  }) as KubeObject;

/**
 * An Applier over a fake client whose applies land in a cache the way the API server and the
 * informer would put them: the applied object plus what the server adds, trimmed by cachedView.
 */
function applier(serverDefaults: (obj: KubeObject) => KubeObject = (obj) => obj) {
  const cache = new Map<string, KubeObject>();
  const applied: KubeObject[] = [];
  const client = {
    async apply(obj: KubeObject, opts: { fieldManager: string }) {
      expect(opts.fieldManager).toBe(FIELD_MANAGER);
      applied.push(obj);
      const stored = serverDefaults({
        ...obj,
        metadata: { ...obj.metadata, uid: 'u1', resourceVersion: '2' },
      });
      cache.set(objectKey(obj), cachedView({ ...stored, status: { readyReplicas: 1 } } as KubeObject));
      return stored;
    },
  };
  const a = new Applier({
    client: client as unknown as KubeClient,
    metrics: createMetrics(),
    cache: () => ({ get: (key: string) => cache.get(key) }) as unknown as Informer<KubeObject>,
  });
  return { a, cache, applied };
}

describe('Applier.ensure', () => {
  it('applies a missing object with the digest of its desired state, then writes nothing while it stays', async () => {
    const { a, applied } = applier();
    await a.ensure(sts());
    expect(applied).toHaveLength(1);
    expect(applied[0]!.metadata.annotations).toEqual({ [APPLIED_ANNOTATION]: appliedDigest(sts()) });
    expect(applied[0]!.metadata.labels).toEqual({ app: 'warehouse' });
    await a.ensure(sts());
    await a.ensure(sts());
    expect(applied).toHaveLength(1);
  });

  it('applies again when the desired state changes, though the cache holds no pod template', async () => {
    const { a, applied, cache } = applier();
    await a.ensure(sts('postgres:17'));
    expect((cache.get('epreuve-jane-x1/warehouse') as { spec?: unknown }).spec).toEqual({ replicas: 1 });
    await a.ensure(sts('postgres:18'));
    expect(applied).toHaveLength(2);
    expect((applied[1]!.spec as { template: unknown }).template).toEqual(
      (sts('postgres:18').spec as { template: unknown }).template,
    );
  });

  it('puts back a hand edit of what the cache keeps: a label, the replicas', async () => {
    const { a, applied, cache } = applier();
    await a.ensure(sts());
    const key = 'epreuve-jane-x1/warehouse';
    const stored = cache.get(key)!;
    cache.set(key, { ...stored, metadata: { ...stored.metadata, labels: { app: 'edited' } } });
    await a.ensure(sts());
    expect(applied).toHaveLength(2);
    cache.set(key, { ...cache.get(key)!, spec: { replicas: 0 } } as KubeObject);
    await a.ensure(sts());
    expect(applied).toHaveLength(3);
  });

  it('puts back a hand edit of any field of a kind the cache keeps whole (a quota)', async () => {
    const { a, applied, cache } = applier();
    const quota = {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'sandbox-quota', namespace: 'epreuve-jane-x1' },
      spec: { hard: { 'limits.cpu': '2250m' } },
    } as KubeObject;
    await a.ensure(quota);
    await a.ensure(quota);
    expect(applied).toHaveLength(1);
    const stored = cache.get('epreuve-jane-x1/sandbox-quota')!;
    cache.set('epreuve-jane-x1/sandbox-quota', {
      ...stored,
      spec: { hard: { 'limits.cpu': '64' } },
    } as KubeObject);
    await a.ensure(quota);
    expect(applied).toHaveLength(2);
  });

  it('applies again an object an older operator applied (no digest on it)', async () => {
    const { a, applied, cache } = applier();
    cache.set('epreuve-jane-x1/warehouse', cachedView(sts()));
    await a.ensure(sts());
    expect(applied).toHaveLength(1);
  });

  it("compares a Service by the digest of what it sets: the server's defaults match, a hand edit does not", async () => {
    const { a, applied, cache } = applier(liveService);
    await a.ensure(grader());
    await a.ensure(grader());
    expect(applied).toHaveLength(1);
    const key = 'epreuve-jane-x1/grader';
    const stored = cache.get(key)!;
    expect(stored).not.toHaveProperty('spec');
    // kubectl edit: another target port. The cache recomputes the digest from the live spec.
    const edited = liveService(grader());
    (edited.spec as { ports: Array<{ targetPort: number }> }).ports[0]!.targetPort = 9999;
    cache.set(key, cachedView({ ...edited, metadata: stored.metadata }));
    await a.ensure(grader());
    expect(applied).toHaveLength(2);
  });

  it('compares a NetworkPolicy by the digest of its spec: an added rule is put back', async () => {
    const { a, applied, cache } = applier();
    await a.ensure(policy());
    await a.ensure(policy());
    expect(applied).toHaveLength(1);
    const key = 'epreuve-jane-x1/allow-platform-ingress';
    const stored = cache.get(key)!;
    cache.set(
      key,
      cachedView({
        ...policy(),
        metadata: stored.metadata,
        spec: { ...(policy().spec as object), ingress: [{ from: [{ podSelector: {} }] }, { from: [] }] },
      } as KubeObject),
    );
    await a.ensure(policy());
    expect(applied).toHaveLength(2);
  });

  it('creates a Job once and never applies it again, whatever it becomes', async () => {
    const { a, applied } = applier();
    const job = (image: string) =>
      ({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'seed', namespace: 'epreuve-jane-x1' },
        spec: { template: { spec: { containers: [{ name: 'seed', image }] } } },
      }) as KubeObject;
    await a.ensure(job('seeder:1'));
    await a.ensure(job('seeder:2'));
    expect(applied).toHaveLength(1);
  });
});

/** The grader's Service as desired.ts writes it: no `type`, every port field set. */
const grader = (): KubeObject =>
  ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'grader', namespace: 'epreuve-jane-x1', labels: { app: 'grader' } },
    spec: {
      selector: { app: 'grader' },
      ports: [{ name: 'http', port: 8080, targetPort: 8080, protocol: 'TCP' }],
    },
  }) as KubeObject;

/** A Service as an API server (v1.35) sends it back: allocated IPs and every default filled in. */
function liveService(obj: KubeObject): KubeObject {
  const spec = structuredClone(obj.spec) as Record<string, unknown> & { ports: object[] };
  return {
    ...obj,
    spec: {
      clusterIP: '10.96.12.7',
      clusterIPs: ['10.96.12.7'],
      internalTrafficPolicy: 'Cluster',
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      sessionAffinity: 'None',
      type: 'ClusterIP',
      ...spec,
    },
  } as KubeObject;
}

const policy = (): KubeObject =>
  ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'allow-platform-ingress', namespace: 'epreuve-jane-x1' },
    spec: {
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: {} }] }],
    },
  }) as KubeObject;

describe('specDigest', () => {
  it("is the same for a Service's desired spec and the one the server sends back with its defaults", () => {
    expect(specDigest('Service', liveService(grader()).spec as object as Record<string, unknown>)).toBe(
      specDigest('Service', grader().spec as Record<string, unknown>),
    );
  });

  it("fills in the server's defaults of what may be left out: a port's protocol and target, the types", () => {
    const bare = { selector: { app: 'a' }, ports: [{ port: 80 }] };
    expect(specDigest('Service', bare)).toBe(
      specDigest('Service', {
        type: 'ClusterIP',
        selector: { app: 'a' },
        ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }],
      }),
    );
    const egress = { podSelector: {}, egress: [{ ports: [{ port: 53 }] }] };
    expect(specDigest('NetworkPolicy', egress)).toBe(
      specDigest('NetworkPolicy', {
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [],
        egress: [{ ports: [{ port: 53, protocol: 'TCP' }] }],
      }),
    );
  });

  it('differs with any field the operator sets', () => {
    const base = specDigest('Service', grader().spec as Record<string, unknown>);
    expect(specDigest('Service', { ...(grader().spec as object), selector: { app: 'other' } })).not.toBe(
      base,
    );
    expect(specDigest('Service', { ...(grader().spec as object), type: 'NodePort' })).not.toBe(base);
    expect(specDigest('NetworkPolicy', policy().spec as Record<string, unknown>)).not.toBe(
      specDigest('NetworkPolicy', { ...(policy().spec as object), policyTypes: ['Ingress', 'Egress'] }),
    );
  });

  it('refuses a kind it has no view for', () => {
    expect(() => specDigest('ConfigMap', {})).toThrow('specDigest: no spec view for kind ConfigMap');
  });
});

describe('appliedDigest', () => {
  it('is the same whatever the order of keys, and differs with any value', () => {
    const one = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's', labels: { a: '1', b: '2' } } };
    const reordered = {
      metadata: { labels: { b: '2', a: '1' }, name: 's' },
      kind: 'Service',
      apiVersion: 'v1',
    };
    expect(appliedDigest(one)).toBe(appliedDigest(reordered));
    expect(appliedDigest(one)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(appliedDigest({ ...one, metadata: { ...one.metadata, labels: { a: '1', b: '3' } } })).not.toBe(
      appliedDigest(one),
    );
  });
});

describe('cachedView', () => {
  it("keeps a workload's metadata, readiness and spec.replicas, drops its pod template, and keeps other kinds' spec and status", () => {
    const full = {
      ...sts(),
      status: { readyReplicas: 1 },
    } as KubeObject;
    expect(cachedView(full)).toEqual({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: full.metadata,
      spec: { replicas: 1 },
      status: { readyReplicas: 1 },
    });
    const quota = {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'q', namespace: 'epreuve-jane-x1' },
      spec: { hard: { cpu: '2' } },
      status: { hard: { cpu: '2' }, used: { cpu: '500m' } },
    } as KubeObject;
    expect(cachedView(quota)).toEqual(quota);
  });

  it('keeps of the metadata what the operator reads, and drops what the server adds', () => {
    const live = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'grader',
        namespace: 'epreuve-jane-x1',
        uid: '6f1c0c4e-1b7e-4a55-9d55-3c1c8a3c2f10',
        resourceVersion: '4242',
        generation: 3,
        creationTimestamp: '2026-12-01T06:00:00Z',
        deletionTimestamp: '2026-12-01T07:00:00Z',
        labels: { 'app.kubernetes.io/managed-by': 'epreuve' },
        annotations: { [APPLIED_ANNOTATION]: 'd1', 'deployment.kubernetes.io/revision': '1' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'x', uid: 'u' }],
      },
      spec: { replicas: 1 },
    } as KubeObject;
    expect(cachedView(live).metadata).toEqual({
      name: 'grader',
      namespace: 'epreuve-jane-x1',
      resourceVersion: '4242',
      deletionTimestamp: '2026-12-01T07:00:00Z',
      labels: { 'app.kubernetes.io/managed-by': 'epreuve' },
      annotations: { [APPLIED_ANNOTATION]: 'd1' },
    });
  });

  it("keeps a Namespace's uid, creation time and every annotation (pool claims and rotations)", () => {
    const ns = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'epreuve-pool-x1',
        uid: 'u1',
        resourceVersion: '7',
        creationTimestamp: '2026-12-01T06:00:00Z',
        labels: { a: 'b' },
        annotations: { 'epreuve.dev/claimed-at': '2026-12-01T06:01:00Z', 'other.io/x': 'y' },
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    } as KubeObject;
    expect(cachedView(ns)).toEqual(ns);
  });

  it('keeps of a workload status what readiness is read from', () => {
    const view = (kind: string, status: unknown) =>
      cachedView({ apiVersion: 'apps/v1', kind, metadata: { name: 'w' }, status } as KubeObject).status;
    expect(
      view('StatefulSet', { readyReplicas: 1, replicas: 1, currentRevision: 'r-1', updateRevision: 'r-1' }),
    ).toEqual({ readyReplicas: 1 });
    expect(
      view('Deployment', {
        availableReplicas: 1,
        readyReplicas: 1,
        conditions: [
          { type: 'Progressing', status: 'True', message: 'ReplicaSet "g-1" has successfully progressed.' },
        ],
      }),
    ).toEqual({ availableReplicas: 1 });
    const failed = { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' };
    expect(
      view('Job', {
        succeeded: 1,
        completionTime: '2026-12-01T06:02:00Z',
        startTime: '2026-12-01T06:01:00Z',
        conditions: [
          { type: 'SuccessCriteriaMet', status: 'True' },
          { type: 'Complete', status: 'True' },
        ],
      }),
    ).toEqual({
      succeeded: 1,
      completionTime: '2026-12-01T06:02:00Z',
      conditions: [{ type: 'Complete', status: 'True' }],
    });
    expect(
      view('Job', { failed: 3, conditions: [{ type: 'FailureTarget', status: 'True' }, failed] }),
    ).toEqual({
      conditions: [failed],
    });
  });

  it('keeps of a Service or a NetworkPolicy its metadata and the digest of its spec', () => {
    const live = liveService(grader());
    expect(cachedView(live)).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: live.metadata,
      specDigest: specDigest('Service', live.spec as Record<string, unknown>),
    });
    expect(cachedView(policy())).not.toHaveProperty('spec');
  });
});
