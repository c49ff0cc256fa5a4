import type { KubeObject } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { desiredObjects, desiredState, namespaceContents } from './desired.ts';
import { context, template } from './fixtures.test-helpers.ts';
import { quotaShortfall } from './quota.ts';

/**
 * The grader store (desired.ts graderStore*): where a MongoDB sandbox's hidden variants and
 * reference results live, out of the candidate's reach without relying on roles.
 */
const tasks = [
  { id: 'devices', sandbox: 'events', exercise: 'sessions-per-device', points: 2 },
  {
    id: 'custom',
    sandbox: 'events',
    prompt: 'Count sessions',
    points: 1,
    grader: { mongoResult: { reference: '[{"$count": "n"}]', collection: 'app_sessions' } },
  },
  { id: 'essay', sandbox: 'events', prompt: 'Explain', points: 1, grader: { manual: {} } },
  { id: 'sql', sandbox: 'warehouse', exercise: 'rank-customers-by-country', points: 2 },
];
const state = desiredState(context(template({ tasks })), (n) => Buffer.alloc(n, 7));
type Container = {
  env: Array<{ name: string; value?: string }>;
  volumeMounts: Array<{ name: string; mountPath: string }>;
};
const podOf = (o: KubeObject) =>
  (
    o.spec as {
      template: {
        spec: { containers: Container[]; volumes: Array<{ name: string; secret?: { secretName: string } }> };
      };
    }
  ).template.spec;
const planOf = (o: KubeObject, env: string) =>
  JSON.parse(podOf(o).containers[0]!.env.find((e) => e.name === env)!.value!) as Array<
    Record<string, unknown>
  >;

describe('the grader store', () => {
  it('is a StatefulSet of the MongoDB image with its own volume, Service and Secret', () => {
    const store = state.grader!.store!;
    expect(store.workload).toMatchObject({ kind: 'StatefulSet', metadata: { name: 'grader-store' } });
    expect(JSON.stringify(store.workload)).toContain('"image":"mongo:7.0"');
    expect(store.service.spec).toMatchObject({
      selector: { 'app.kubernetes.io/name': 'grader-store' },
      ports: [{ port: 27017 }],
    });
    expect(podOf(store.workload).containers[0]).toMatchObject({
      resources: loadConfig({}).EPREUVE_SANDBOX_SIZES.graderStore,
    });
    const secret = state.secrets.find((s) => s.metadata.name === 'grader-store-credentials')!;
    expect(Object.keys(secret.stringData as object).sort()).toEqual(['admin-password', 'admin-username']);
    // Applied before the grader and the seed Job, which connect to it.
    const order = namespaceContents(state).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(order.indexOf('StatefulSet/grader-store')).toBeLessThan(order.indexOf('Deployment/grader'));
    expect(order.indexOf('StatefulSet/grader-store')).toBeLessThan(order.indexOf('Job/seed'));
  });

  it('only the seed Job and the grader may connect to it; it reaches no one', () => {
    const policies = Object.fromEntries(
      state.guardRails.filter((o) => o.kind === 'NetworkPolicy').map((o) => [o.metadata.name, o.spec]),
    ) as Record<
      string,
      { podSelector: object; policyTypes: string[]; ingress?: unknown[]; egress?: unknown[] }
    >;
    const ingress = policies['allow-grader-store-ingress']!;
    expect(ingress.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'grader-store' } });
    expect(ingress.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(ingress.egress).toBeUndefined();
    expect(ingress.ingress).toEqual([
      {
        from: [
          {
            podSelector: {
              matchExpressions: [
                { key: 'app.kubernetes.io/name', operator: 'In', values: ['grader', 'seeder'] },
              ],
            },
          },
        ],
        ports: [{ protocol: 'TCP', port: 27017 }],
      },
    ]);
    // The namespace-wide policies (sandboxes, the platform namespace with its gateway) leave it out.
    for (const name of ['allow-same-namespace', 'allow-platform-ingress'])
      expect(JSON.stringify(policies[name]!.podSelector)).toContain(
        '"NotIn","values":["grader","grader-store"]',
      );
    expect(policies['allow-grader-to-grader-store']).toMatchObject({
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'grader' } },
      policyTypes: ['Egress'],
    });
  });

  it('is named in the seed and grader plans of MongoDB sandboxes, with the references of their tasks', () => {
    const seedPlan = planOf(state.seed!, 'EPREUVE_SEED_PLAN');
    const store = {
      host: 'grader-store.epreuve-jane-doe-q4a53.svc',
      port: 27017,
      credentials: '/etc/epreuve/grader-store',
    };
    expect(seedPlan.find((p) => p.name === 'events')).toMatchObject({
      store,
      references: [
        { task: 'devices', exercise: 'sessions-per-device' },
        { task: 'custom', reference: '[{"$count": "n"}]', collection: 'app_sessions' },
      ],
    });
    expect(seedPlan.find((p) => p.name === 'warehouse')).not.toHaveProperty('store');
    expect(
      planOf(state.grader!.workload, 'EPREUVE_GRADER_PLAN').find((p) => p.name === 'events'),
    ).toMatchObject({
      store,
    });
    for (const o of [state.seed!, state.grader!.workload]) {
      expect(podOf(o).volumes).toContainEqual({
        name: 'grader-store',
        secret: { secretName: 'grader-store-credentials' },
      });
      expect(podOf(o).containers[0]!.volumeMounts).toContainEqual(
        expect.objectContaining({ name: 'grader-store', mountPath: '/etc/epreuve/grader-store' }),
      );
    }
  });

  it('is not mounted by any sandbox: the candidate-facing pods never hold its credential', () => {
    for (const w of state.workloads)
      expect(JSON.stringify(w.workload)).not.toContain('grader-store-credentials');
  });

  it('comes on top of the template resources: a template that fits without it still fits', () => {
    const ctx = context(template({ tasks }));
    expect(quotaShortfall(ctx, desiredObjects(ctx))).toBeUndefined();
  });

  it('passes the role-less opt-in to the seed Job only when the operator is told to', () => {
    const env = (config: Record<string, string>) =>
      podOf(desiredState({ ...context(), config: loadConfig(config) }).seed!).containers[0]!.env.map(
        (e) => e.name,
      );
    expect(env({})).not.toContain('EPREUVE_ALLOW_ROLELESS_USERS');
    expect(env({ EPREUVE_ALLOW_ROLELESS_USERS: 'true' })).toContain('EPREUVE_ALLOW_ROLELESS_USERS');
    expect(() => loadConfig({ EPREUVE_ALLOW_ROLELESS_USERS: 'yes' })).toThrow(/EPREUVE_ALLOW_ROLELESS_USERS/);
  });

  it('is left out, with its Secret and policies, when the template has no MongoDB sandbox', () => {
    const pgOnly = desiredState(
      context(template({ sandboxes: [{ name: 'warehouse', postgres: { dataset: 'retail@1' } }], tasks: [] })),
    );
    expect(pgOnly.grader?.store).toBeUndefined();
    expect(pgOnly.secrets.map((s) => s.metadata.name)).not.toContain('grader-store-credentials');
    expect(JSON.stringify(pgOnly)).not.toContain('grader-store-credentials');
    expect(pgOnly.guardRails.map((o) => o.metadata.name)).not.toContain('allow-grader-store-ingress');
  });
});
