import { KubeClient, KubeError, type KubeObject, resourceFor } from '@epreuve/kube';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';

/**
 * API Priority and Fairness against the real API server: a FlowSchema puts one ServiceAccount —
 * standing for the operator's — on a priority level with about three seats and no queue, so a
 * burst gets HTTP 429 with Retry-After. The client's retries carry every request through; the same
 * burst without them fails.
 */
const kubeconfig = inject('kubeconfig');
const admin = kube(kubeconfig);
const CONFIGMAP = resourceFor('v1', 'ConfigMap');
const FLOWCONTROL = '/apis/flowcontrol.apiserver.k8s.io/v1';

let ns: string;
let name: string;
let throttledConfig: KubeConfig;

beforeAll(async () => {
  ns = await createTestNamespace(kubeconfig, 'apf');
  name = `epreuve-test-${ns}`;
  const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'throttled', namespace: ns } };
  await admin.create(sa as KubeObject);
  await admin.create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'configmaps', namespace: ns },
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'create', 'delete'] }],
  } as KubeObject);
  await admin.create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'throttled', namespace: ns },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmaps' },
    subjects: [{ kind: 'ServiceAccount', name: 'throttled', namespace: ns }],
  } as KubeObject);
  // A priority level of 1 share (≈ 3 seats of the server's 600), that neither borrows nor queues.
  await admin.request('POST', `${FLOWCONTROL}/prioritylevelconfigurations`, {
    body: {
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'PriorityLevelConfiguration',
      metadata: { name },
      spec: {
        type: 'Limited',
        limited: {
          nominalConcurrencyShares: 1,
          lendablePercent: 0,
          borrowingLimitPercent: 0,
          limitResponse: { type: 'Reject' },
        },
      },
    },
  });
  await admin.request('POST', `${FLOWCONTROL}/flowschemas`, {
    body: {
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'FlowSchema',
      metadata: { name },
      spec: {
        priorityLevelConfiguration: { name },
        matchingPrecedence: 500, // before the built-in service-accounts schema (9000)
        distinguisherMethod: { type: 'ByUser' },
        rules: [
          {
            subjects: [{ kind: 'ServiceAccount', serviceAccount: { name: 'throttled', namespace: ns } }],
            resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'] }],
          },
        ],
      },
    },
  });
  // The API server has taken the schema in once it says its priority level exists.
  await eventually(async () => {
    const fs = await admin.request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
      'GET',
      `${FLOWCONTROL}/flowschemas/${name}`,
    );
    expect(fs.status?.conditions?.find((c) => c.type === 'Dangling')?.status).toBe('False');
  });

  const { status } = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${ns}/serviceaccounts/throttled/token`,
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
  throttledConfig = new KubeConfig();
  throttledConfig.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'throttled', token: status.token }],
    contexts: [{ name: 'throttled', cluster: cluster.name, user: 'throttled' }],
    currentContext: 'throttled',
  });
});

afterAll(async () => {
  await admin.request('DELETE', `${FLOWCONTROL}/flowschemas/${name}`).catch(() => {});
  await admin.request('DELETE', `${FLOWCONTROL}/prioritylevelconfigurations/${name}`).catch(() => {});
});

/** A client as the throttled ServiceAccount, counting responses by code and retries. */
function throttledClient(retry: boolean) {
  const codes: number[] = [];
  const retries: Array<{ code: number | string; delayMs: number }> = [];
  const client = new KubeClient(throttledConfig, {
    qps: 10_000, // no client-side budget: the API server is the one to push back
    burst: 10_000,
    ...(retry ? {} : { retry: false }),
    onResponse: (_m, _r, code) => codes.push(code),
    onRetry: (_m, _r, code, delayMs) => retries.push({ code, delayMs }),
  });
  return { client, codes, retries };
}

/** 60 concurrent reads and 40 concurrent creates (distinct names), settled. */
function burst(client: KubeClient, prefix: string) {
  return Promise.allSettled([
    ...Array.from({ length: 60 }, () => client.list(CONFIGMAP, { namespace: ns })),
    ...Array.from({ length: 40 }, (_, i) =>
      client.create({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${prefix}-${i}`, namespace: ns },
      }),
    ),
  ]);
}

describe('the Kubernetes client under API Priority and Fairness', () => {
  it('without retries, a burst from the throttled user gets 429s', async () => {
    // (eventually: the API server applies a new FlowSchema within a second or so)
    await eventually(
      async () => {
        const { client } = throttledClient(false);
        const results = await burst(client, `once-${Date.now()}`);
        const refused = results
          .filter((r) => r.status === 'rejected')
          .map((r) => (r as PromiseRejectedResult).reason);
        expect(refused.length).toBeGreaterThan(0);
        for (const err of refused) expect(err).toMatchObject({ code: 429 });
        expect(refused[0]).toBeInstanceOf(KubeError);
      },
      30_000,
      500,
    );
  });

  it('with retries, every request of the burst completes, honouring Retry-After', async () => {
    const { client, codes, retries } = throttledClient(true);
    const results = await burst(client, 'retried');
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    // The API server did push back, and the client waited as told (Retry-After, in seconds).
    const throttled = codes.filter((c) => c === 429).length;
    expect(throttled).toBeGreaterThan(0);
    expect(retries.length).toBe(throttled);
    for (const r of retries) expect(r.delayMs).toBeGreaterThanOrEqual(1000);
    // Every create was retried on 429 only (never processed twice): exactly 40 ConfigMaps, no 409.
    expect(codes).not.toContain(409);
    const created = await admin.list<KubeObject>(CONFIGMAP, { namespace: ns });
    expect(created.items.filter((c) => c.metadata.name!.startsWith('retried-'))).toHaveLength(40);
    console.log(`burst of 100: ${throttled} responses were 429, all retried to success`);
  }, 60_000);
});
