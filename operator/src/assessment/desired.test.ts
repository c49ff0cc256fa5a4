import type { KubeObject } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import {
  credentialsSecret,
  desiredObjects,
  desiredState,
  namespaceContents,
  namespaceOf,
} from './desired.ts';
import { assessment, context, template } from './fixtures.test-helpers.ts';
import { quotaShortfall } from './quota.ts';

interface PodSpec {
  securityContext: Record<string, unknown>;
  automountServiceAccountToken: boolean;
  containers: Array<{
    name: string;
    securityContext: Record<string, unknown>;
    resources: { requests: object; limits: object };
  }>;
}
const podSpecs = (objs: KubeObject[]) =>
  objs
    .filter((o) => (o.spec as { template?: unknown })?.template)
    .map((o) => [o, (o.spec as { template: { spec: PodSpec } }).template.spec] as const);

describe('desiredObjects', () => {
  const objs = desiredObjects(context());

  it('puts the namespace first and everything else inside it', () => {
    expect(objs[0]).toMatchObject({ kind: 'Namespace', metadata: { name: namespaceOf(assessment()) } });
    for (const o of objs.slice(1)) expect(o.metadata.namespace).toBe(objs[0]!.metadata.name);
  });

  it('enforces Pod Security restricted, pinned, in enforce, audit and warn modes', () => {
    const labels = objs[0]!.metadata.labels!;
    for (const mode of ['enforce', 'audit', 'warn']) {
      expect(labels[`pod-security.kubernetes.io/${mode}`]).toBe('restricted');
      expect(labels[`pod-security.kubernetes.io/${mode}-version`]).toBe('v1.33');
    }
  });

  it('labels every object with its owner, for the informers and for cleanup', () => {
    for (const o of objs) {
      expect(o.metadata.labels).toMatchObject({
        'app.kubernetes.io/managed-by': 'epreuve',
        'epreuve.dev/assessment': 'jane-doe',
        'epreuve.dev/owner-namespace': 'hiring',
      });
    }
  });

  it('builds one workload and one Service per sandbox, plus the seed Job', () => {
    const names = objs.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'StatefulSet/warehouse',
        'StatefulSet/events',
        'Deployment/source',
        'Service/warehouse',
        'Service/events',
        'Service/source',
        'Job/seed',
      ]),
    );
  });

  it('makes every pod compliant with restricted, with requests and limits', () => {
    const pods = podSpecs(objs);
    expect(pods).toHaveLength(4);
    for (const [o, pod] of pods) {
      expect(pod.securityContext, o.metadata.name).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.automountServiceAccountToken).toBe(false);
      for (const c of pod.containers) {
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
          runAsNonRoot: true,
        });
        expect(Object.keys(c.resources.requests).sort()).toEqual(['cpu', 'memory']);
        expect(Object.keys(c.resources.limits).sort()).toEqual(['cpu', 'memory']);
      }
    }
  });

  it('denies all traffic by default and allows DNS only when asked', () => {
    const policies = objs.filter((o) => o.kind === 'NetworkPolicy').map((o) => o.metadata.name);
    expect(policies).toEqual([
      'default-deny',
      'allow-same-namespace',
      'allow-platform-ingress',
      'allow-seed-dns',
    ]);
    // The seed Job resolves the sandboxes' Service names even when sandboxes get no DNS.
    expect(objs.find((o) => o.metadata.name === 'allow-seed-dns')!.spec).toMatchObject({
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'seeder' } },
      policyTypes: ['Egress'],
    });
    expect(objs.find((o) => o.metadata.name === 'default-deny')!.spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    });
    const withDns = desiredObjects(context(template({ network: { egress: 'dns-only' } })));
    expect(withDns.filter((o) => o.kind === 'NetworkPolicy').map((o) => o.metadata.name)).toContain(
      'allow-dns',
    );
  });

  it('turns template resources into the quota', () => {
    const quota = objs.find((o) => o.kind === 'ResourceQuota')!;
    expect((quota.spec as { hard: Record<string, string> }).hard).toMatchObject({
      'limits.cpu': '2',
      'limits.memory': '4Gi',
      'requests.storage': '5Gi',
    });
  });

  it('uses the image of the requested database version', () => {
    const t = template({ sandboxes: [{ name: 'db', postgres: { dataset: 'retail@1', version: '15' } }] });
    const sts = desiredObjects(context(t)).find((o) => o.kind === 'StatefulSet')!;
    expect(JSON.stringify(sts)).toContain('"image":"postgres:15"');
  });

  it('is a pure function: same inputs, same objects', () => {
    expect(desiredObjects(context())).toEqual(objs);
  });

  it('leaves the seed Job out when there is nothing to seed', () => {
    const t = template({ sandboxes: [{ name: 'api', dataApi: { dataset: 'retail@1' } }] });
    expect(desiredObjects(context(t)).some((o) => o.kind === 'Job')).toBe(false);
  });
});

describe('desiredState', () => {
  const state = desiredState(context(), (n) => Buffer.alloc(n, 7));

  it("decides each sandbox's workload kind, once, with the workload it builds", () => {
    expect(state.workloads.map((w) => [w.sandbox, w.workloadKind, w.workload.kind, w.service.kind])).toEqual([
      ['warehouse', 'StatefulSet', 'StatefulSet', 'Service'],
      ['events', 'StatefulSet', 'StatefulSet', 'Service'],
      ['source', 'Deployment', 'Deployment', 'Service'],
    ]);
  });

  it('groups the guard rails, the Secrets and the seed Job', () => {
    expect(state.guardRails.map((o) => o.kind)).toEqual([
      'ResourceQuota',
      'LimitRange',
      'NetworkPolicy',
      'NetworkPolicy',
      'NetworkPolicy',
      'NetworkPolicy',
      'ServiceAccount',
      'ServiceAccount',
      'RoleBinding',
    ]);
    expect(state.secrets.map((o) => o.metadata.name)).toEqual([
      'warehouse-credentials',
      'events-credentials',
      'source-credentials',
    ]);
    expect(state.seed?.kind).toBe('Job');
  });

  it('flattens, for a raw client, to the applied objects: everything but the Secrets', () => {
    expect(desiredObjects(context())).toEqual([state.namespace, ...namespaceContents(state)]);
  });
});

describe('credentialsSecret', () => {
  const random = (n: number) => Buffer.alloc(n, 7);
  it('generates candidate, admin and grader credentials for databases', () => {
    const ctx = context();
    const s = credentialsSecret(ctx, ctx.template.spec.sandboxes[0]!, random);
    expect(Object.keys(s.stringData as object).sort()).toEqual(
      [
        'admin-password',
        'admin-username',
        'database',
        'grader-password',
        'grader-username',
        'password',
        'username',
      ].sort(),
    );
    expect((s.stringData as Record<string, string>).password).toBe(Buffer.alloc(24, 7).toString('base64url'));
  });
  it('generates an API key for the candidate and an admin key for the platform for the data API', () => {
    const ctx = context();
    expect(
      Object.keys(credentialsSecret(ctx, ctx.template.spec.sandboxes[2]!, random).stringData as object),
    ).toEqual(['api-key', 'admin-key']);
  });
});

describe('quotaShortfall', () => {
  it('accepts sandboxes that fit', () =>
    expect(quotaShortfall(context(), desiredObjects(context()))).toBeUndefined());
  it('names each resource that is too small', () => {
    const ctx = context(template({ resources: { cpu: '1', memory: '512Mi', storage: '1Gi' } }));
    const msg = quotaShortfall(ctx, desiredObjects(ctx));
    expect(msg).toMatch(/cpu: sandboxes need 1750m but resources.cpu is 1/);
    expect(msg).toMatch(/memory: sandboxes need 1664Mi but resources.memory is 512Mi/);
    expect(msg).toMatch(/storage: sandboxes need 2Gi but resources.storage is 1Gi/);
  });
});
