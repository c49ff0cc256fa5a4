import { SANDBOX_DATABASE } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
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
      expect(labels[`pod-security.kubernetes.io/${mode}-version`]).toBe('v1.36');
    }
  });

  it('probes every long-running pod every second until it starts, then at the readiness period', () => {
    const probed = podSpecs(objs).filter(([o]) => o.kind !== 'Job');
    expect(probed.map(([o]) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'Deployment/grader',
      'Deployment/source',
      'StatefulSet/events',
      'StatefulSet/grader-store',
      'StatefulSet/warehouse',
    ]);
    for (const [o, spec] of probed) {
      const c = spec.containers[0] as unknown as Record<string, { periodSeconds: number } | undefined>;
      const { startupProbe, readinessProbe } = c;
      expect(readinessProbe, o.metadata.name).toBeDefined();
      expect(readinessProbe!.periodSeconds).toBeGreaterThan(1);
      // The same check, every second, with a budget of five minutes before the kubelet restarts it.
      expect(startupProbe).toEqual({ ...readinessProbe, periodSeconds: 1, failureThreshold: 300 });
    }
  });

  // Red team 5: parallel workers an answer started on a hidden variant, counted by the candidate
  // through the process ids of their own connections.
  it('starts PostgreSQL without background workers (no parallel query to count)', () => {
    const warehouse = podSpecs(objs).find(
      ([o]) => o.kind === 'StatefulSet' && o.metadata.name === 'warehouse',
    )!;
    expect((warehouse[1].containers[0] as { args?: string[] }).args).toEqual([
      'postgres',
      '-c',
      'max_worker_processes=0',
    ]);
  });

  it('places every sandbox pod (databases, data API, grader, seed Job) as configured, and only them', () => {
    const placement = {
      nodeSelector: { 'epreuve.dev/pool': 'sandboxes' },
      tolerations: [
        { key: 'epreuve.dev/sandboxes', operator: 'Exists' as const, effect: 'NoSchedule' as const },
      ],
      affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
    };
    const config = loadConfig({ EPREUVE_SANDBOX_PLACEMENT: JSON.stringify(placement) });
    const placed = desiredObjects({ ...context(), config });
    const pods = podSpecs(placed);
    expect(pods.map(([o]) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'Deployment/grader',
      'Deployment/source',
      'Job/seed',
      'StatefulSet/events',
      'StatefulSet/grader-store',
      'StatefulSet/warehouse',
    ]);
    for (const [o, spec] of pods) expect(spec, `${o.kind}/${o.metadata.name}`).toMatchObject(placement);
    // Only the fields given: a node selector alone adds nothing else.
    const one = desiredObjects({
      ...context(),
      config: loadConfig({ EPREUVE_SANDBOX_PLACEMENT: '{"nodeSelector":{"pool":"b"}}' }),
    });
    for (const [, spec] of podSpecs(one)) {
      expect(spec).toMatchObject({ nodeSelector: { pool: 'b' } });
      expect(Object.keys(spec)).not.toContain('tolerations');
    }
    // None configured: the pods are exactly what they were, so nothing is rewritten on upgrade.
    for (const [, spec] of podSpecs(objs))
      for (const k of ['nodeSelector', 'tolerations', 'affinity']) expect(Object.keys(spec)).not.toContain(k);
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
        'Service/grader',
        'Deployment/grader',
        'Job/seed',
      ]),
    );
  });

  it('makes every pod compliant with restricted, with requests and limits', () => {
    const pods = podSpecs(objs);
    expect(pods).toHaveLength(6); // three sandboxes, the grader, its store, the seed Job
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
      'allow-api-to-grader',
      'allow-seed-dns',
      'allow-grader-store-ingress',
      'allow-grader-to-grader-store',
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

  it('turns template resources into the quota, plus the grader store when there is one', () => {
    const quota = objs.find((o) => o.kind === 'ResourceQuota')!;
    // The template's 2 CPU, 4Gi, 5Gi and the store's 250m, 256Mi and 256Mi volume.
    expect((quota.spec as { hard: Record<string, string> }).hard).toMatchObject({
      'limits.cpu': '2250m',
      'limits.memory': '4352Mi',
      'requests.storage': '5376Mi',
    });
    const noMongo = desiredObjects(
      context(template({ sandboxes: [{ name: 'db', postgres: { dataset: 'retail@1', version: '18' } }] })),
    ).find((o) => o.kind === 'ResourceQuota')!;
    expect((noMongo.spec as { hard: Record<string, string> }).hard).toMatchObject({
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

  it("asks the PostgreSQL image for the sandbox's dataset preloaded, made for the Secret's admin and database", () => {
    const t = template({ sandboxes: [{ name: 'db', postgres: { dataset: 'retail@1', version: '16' } }] });
    const sts = desiredObjects(context(t)).find((o) => o.kind === 'StatefulSet')! as unknown as {
      spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } } };
    };
    const env = sts.spec.template.spec.containers[0]!.env;
    expect(env.filter((e) => e.name.startsWith('EPREUVE_PRELOAD_'))).toEqual([
      { name: 'EPREUVE_PRELOAD_DATASET', value: 'retail@1-standard' },
    ]);
    // The image's preloaded directories are made for user postgres and database sandbox (preload.ts).
    expect(env.find((e) => e.name === 'POSTGRES_DB')?.value).toBe('sandbox');
    const secret = credentialsSecret(
      context(),
      { name: 'db', postgres: { dataset: 'retail@1', version: '16', storage: '1Gi' } },
      () => Buffer.alloc(24),
    );
    expect((secret.stringData as Record<string, string>)['admin-username']).toBe('postgres');
  });

  it("asks the MongoDB image for the sandbox's dataset preloaded, as the database the seed Job fills", () => {
    const env = (objs: KubeObject[]) =>
      (
        objs.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'events')!.spec as {
          template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } };
        }
      ).template.spec.containers[0]!.env.filter((e) => e.name.startsWith('EPREUVE_PRELOAD_'));
    expect(env(objs)).toEqual([
      { name: 'EPREUVE_PRELOAD_DATASET', value: 'retail@1-standard' },
      { name: 'EPREUVE_PRELOAD_DATABASE', value: 'sandbox' },
    ]);
    const latest = template({ sandboxes: [{ name: 'events', mongo: { dataset: 'retail' } }] });
    expect(env(desiredObjects(context(latest)))[0]).toEqual({
      name: 'EPREUVE_PRELOAD_DATASET',
      value: 'retail-standard',
    });
    // The database the seed Job fills is the Secret's; the preload names the same one.
    const secret = credentialsSecret(
      context(),
      { name: 'events', mongo: { dataset: 'retail@1', version: '7.0', storage: '1Gi' } },
      () => Buffer.alloc(24),
    );
    expect((secret.stringData as Record<string, string>).database).toBe(SANDBOX_DATABASE);
  });

  it('is a pure function: same inputs, same objects', () => {
    expect(desiredObjects(context())).toEqual(objs);
  });

  it('has the seeder copy what the data API serves for a PostgreSQL sandbox with check tasks, and only then', () => {
    const planOf = (objs: KubeObject[]) => {
      const job = objs.find((o) => o.kind === 'Job')!;
      const env = (
        job.spec as { template: { spec: { containers: Array<{ env: Array<{ value: string }> }> } } }
      ).template.spec.containers[0]!.env;
      return JSON.parse(env[0]!.value) as Array<{ name: string; collectionSource?: unknown }>;
    };
    expect(planOf(objs).map((e) => e.collectionSource)).toEqual([undefined, undefined]);
    const checked = template({
      tasks: [
        {
          id: 'load',
          sandbox: 'warehouse',
          prompt: 'Load it.',
          grader: {
            check: { checks: [{ name: 'a', sql: 'SELECT 1', expect: { noRows: true }, hint: 'h' }] },
          },
        },
      ],
    });
    expect(planOf(desiredObjects(context(checked))).map((e) => [e.name, e.collectionSource])).toEqual([
      ['warehouse', { dataset: 'retail@1', size: 'standard' }],
      ['events', undefined],
    ]);
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
      'grader-credentials',
      'grader-store-credentials',
    ]);
    expect(state.seed?.kind).toBe('Job');
    expect(state.grader?.workload.kind).toBe('Deployment');
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
    // Three sandboxes, the seed Job and the grader (250m, 192Mi).
    expect(msg).toMatch(/cpu: sandboxes need 2 but resources.cpu is 1/);
    expect(msg).toMatch(/memory: sandboxes need 1856Mi but resources.memory is 512Mi/);
    expect(msg).toMatch(/storage: sandboxes need 2Gi but resources.storage is 1Gi/);
  });
});

describe('the grader', () => {
  const state = desiredState(context(), () => Buffer.alloc(32, 7));
  const pod = (state.grader!.workload.spec as { template: { spec: unknown } }).template.spec as {
    containers: Array<{ args: string[]; env: Array<{ name: string; value: string }>; resources: object }>;
    volumes: Array<{ name: string; secret?: { secretName: string; items?: Array<{ key: string }> } }>;
  };

  it('runs the grade server with its own limits and a plan of the database sandboxes, hidden variants included', () => {
    expect(pod.containers[0]!.args).toEqual(['grade-server']);
    expect(pod.containers[0]!.resources).toEqual(loadConfig({}).EPREUVE_SANDBOX_SIZES.grader);
    const plan = JSON.parse(pod.containers[0]!.env.find((e) => e.name === 'EPREUVE_GRADER_PLAN')!.value);
    expect(plan.map((p: { name: string }) => p.name)).toEqual(['warehouse', 'events']);
    expect(plan[0]).toMatchObject({ kind: 'postgres', hiddenVariants: 2 });
  });

  it("mounts the grader's and the candidate's keys of each sandbox Secret (the console runs as the candidate), never the admin's", () => {
    for (const v of pod.volumes.filter((v) => v.name.startsWith('credentials-')))
      expect(v.secret!.items!.map((i) => i.key)).toEqual([
        'database',
        'grader-username',
        'grader-password',
        'username',
        'password',
      ]);
  });

  it('is reachable from the API pods alone; the sandboxes policies leave it out', () => {
    const policies = Object.fromEntries(
      state.guardRails.filter((o) => o.kind === 'NetworkPolicy').map((o) => [o.metadata.name, o.spec]),
    ) as Record<string, { podSelector: object; ingress?: Array<{ from: object[] }> }>;
    expect(policies['allow-api-to-grader']!.podSelector).toEqual({
      matchLabels: { 'app.kubernetes.io/name': 'grader' },
    });
    expect(policies['allow-api-to-grader']!.ingress![0]!.from).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'epreuve-system' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'epreuve-api' } },
      },
    ]);
    for (const name of ['allow-same-namespace', 'allow-platform-ingress'])
      expect(policies[name]!.podSelector).toEqual({
        matchExpressions: [
          { key: 'app.kubernetes.io/name', operator: 'NotIn', values: ['grader', 'grader-store'] },
        ],
      });
  });

  it('is left out, with its Secret, when no sandbox holds a database', () => {
    const apiOnly = desiredState(
      context(template({ sandboxes: [{ name: 'source', dataApi: { dataset: 'retail@1' } }], tasks: [] })),
    );
    expect(apiOnly.grader).toBeUndefined();
    expect(apiOnly.secrets.map((s) => s.metadata.name)).toEqual(['source-credentials']);
  });
});
