import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { renderChart } from '../harness/chart.ts';
import { createTestNamespace, kubectl } from '../harness/kube.ts';

/**
 * Least privilege, enforced by the real API server (issue 15, item 4): the chart's RBAC and its
 * ValidatingAdmissionPolicy applied as the chart renders them, then every write tried as the
 * operator's and the API's ServiceAccounts (impersonated with kubectl --as). Each refusal here
 * was allowed by the chart before: the operator's ClusterRole let it create workloads, Secrets and
 * RoleBindings in any namespace, and the API could read and write every ConfigMap in the cluster.
 */
const kubeconfig = inject('kubeconfig');
let release: string; // the platform namespace the chart is installed in
let team: string;
let otherTeam: string;
let candidate: string;
const operator = () => `--as=system:serviceaccount:${release}:epreuve-operator`;
const api = () => `--as=system:serviceaccount:${release}:epreuve-api`;

const configMap = (namespace: string, name: string) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data: { a: 'b' } });
const create = (as: string, body: string) => kubectl(kubeconfig, [as, 'create', '-f', '-'], body);

beforeAll(async () => {
  release = await createTestNamespace(kubeconfig, 'epreuve-lp');
  team = await createTestNamespace(kubeconfig, 'team-lp');
  otherTeam = await createTestNamespace(kubeconfig, 'team-other');
  candidate = await createTestNamespace(kubeconfig, 'cand-lp');
  // A candidate namespace, as the operator labels the ones it manages.
  expect(
    (await kubectl(kubeconfig, ['label', 'namespace', candidate, 'app.kubernetes.io/managed-by=epreuve']))
      .code,
  ).toBe(0);
  const rendered = renderChart('epreuve', release, [
    '--set-json',
    `teams=${JSON.stringify([team])}`,
    '--show-only',
    'templates/operator-rbac.yaml',
    '--show-only',
    'templates/api-rbac.yaml',
    '--show-only',
    'templates/admission-policy.yaml',
  ]);
  const applied = await kubectl(kubeconfig, ['apply', '--server-side', '-f', '-'], rendered);
  expect(applied.code, applied.stderr).toBe(0);
  // The policy is compiled and its binding admitted asynchronously: wait until it bites.
  for (let i = 0; i < 60; i++) {
    const probe = await create(operator(), configMap('default', `probe-${i}`));
    if (probe.code !== 0 && /managed-namespaces-only|candidate namespaces it manages/.test(probe.stderr))
      break;
    if (probe.code === 0) await kubectl(kubeconfig, ['delete', 'configmap', '-n', 'default', `probe-${i}`]);
    await sleep(500);
  }
}, 120_000);

afterAll(async () => {
  await kubectl(kubeconfig, [
    'delete',
    'validatingadmissionpolicybinding,validatingadmissionpolicy',
    'epreuve-operator-managed-namespaces-only',
    '--ignore-not-found',
  ]);
  await kubectl(kubeconfig, [
    'delete',
    'clusterrolebinding,clusterrole',
    '-l',
    'app.kubernetes.io/instance=epreuve',
  ]);
});

describe('the operator', () => {
  it('writes in the candidate namespaces it manages', async () => {
    const res = await create(
      operator(),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds', namespace: candidate },
        stringData: { a: 'b' },
      }),
    );
    expect(res.code, res.stderr).toBe(0);
  });

  it('is refused in kube-system and in a team namespace, naming why', async () => {
    for (const ns of ['kube-system', otherTeam]) {
      const res = await create(
        operator(),
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'planted', namespace: ns },
          stringData: { a: 'b' },
        }),
      );
      expect(res.code, ns).not.toBe(0);
      expect(res.stderr).toMatch(/may only write secrets in candidate namespaces it manages/);
    }
    const binding = await create(
      operator(),
      JSON.stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'planted', namespace: 'kube-system' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'epreuve-sandbox-reader',
        },
        subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: 'kube-system' }],
      }),
    );
    expect(binding.code).not.toBe(0);
  });

  it('cannot adopt default by labelling it as managed', async () => {
    const res = await kubectl(kubeconfig, [
      operator(),
      'label',
      'namespace',
      'default',
      'app.kubernetes.io/managed-by=epreuve',
    ]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/only create, change or delete namespaces it manages/);
    const labels = await kubectl(kubeconfig, [
      'get',
      'namespace',
      'default',
      '-o',
      'jsonpath={.metadata.labels}',
    ]);
    expect(labels.stdout).not.toContain('managed-by');
  });

  it('still writes Assessment status and Events in team namespaces', async () => {
    const event = await create(
      operator(),
      JSON.stringify({
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: 'lp-event', namespace: team },
        eventTime: new Date().toISOString().replace('Z', '000Z'), // MicroTime
        reportingController: 'epreuve.dev/operator',
        reportingInstance: 'test',
        action: 'Provision',
        reason: 'Provisioning',
        type: 'Normal',
        regarding: { kind: 'Assessment', name: 'x', namespace: team },
      }),
    );
    expect(event.code, event.stderr).toBe(0);
    const status = await kubectl(kubeconfig, [
      operator(),
      'auth',
      'can-i',
      'patch',
      'assessments.epreuve.dev/status',
      '-n',
      team,
    ]);
    expect(status.stdout.trim()).toBe('yes');
  });
});

describe('the API', () => {
  it('writes interview ConfigMaps in its teams’ namespaces only', async () => {
    expect((await create(api(), configMap(team, 'interview-x'))).code).toBe(0);
    for (const ns of ['kube-system', otherTeam]) {
      const res = await create(api(), configMap(ns, 'planted'));
      expect(res.code, ns).not.toBe(0);
      expect(res.stderr).toMatch(/forbidden/);
    }
  });

  it('cannot read ConfigMaps or Secrets outside its teams (kube-system’s are not its business)', async () => {
    for (const args of [
      ['get', 'configmaps', '-n', 'kube-system'],
      ['get', 'secrets', '-n', 'kube-system'],
      ['get', 'configmaps', '-n', otherTeam],
    ]) {
      const res = await kubectl(kubeconfig, [api(), ...args]);
      expect(res.code, args.join(' ')).not.toBe(0);
      expect(res.stderr).toMatch(/forbidden/);
    }
  });

  it('creates and withdraws Submissions and Assessments in its teams only', async () => {
    const can = async (verb: string, resource: string, ns: string) =>
      (await kubectl(kubeconfig, [api(), 'auth', 'can-i', verb, resource, '-n', ns])).stdout.trim();
    expect(await can('delete', 'submissions.epreuve.dev', team)).toBe('yes');
    expect(await can('create', 'assessments.epreuve.dev', team)).toBe('yes');
    expect(await can('create', 'assessments.epreuve.dev', otherTeam)).toBe('no');
    expect(await can('list', 'assessments.epreuve.dev', otherTeam)).toBe('yes'); // its cache is cluster-wide
  });
});
