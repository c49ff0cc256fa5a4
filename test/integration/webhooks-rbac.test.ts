import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { renderChart } from '../harness/chart.ts';
import { createTestNamespace, kubectl } from '../harness/kube.ts';

/**
 * The webhook sender's rights, enforced by the real API server: the chart's RBAC and admission
 * policy as rendered, then each read and write tried as the operator (kubectl --as). In a team
 * namespace it reads exactly one Secret (the endpoint's) and writes exactly one ConfigMap (the
 * delivery log); outside its teams, neither.
 */
const kubeconfig = inject('kubeconfig');
let release: string;
let team: string;
let otherTeam: string;
const operator = () => `--as=system:serviceaccount:${release}:epreuve-operator`;
const configMap = (namespace: string, name: string) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data: { a: 'b' } });
const secret = (namespace: string, name: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    stringData: { url: 'https://x' },
  });

beforeAll(async () => {
  release = await createTestNamespace(kubeconfig, 'epreuve-wh');
  team = await createTestNamespace(kubeconfig, 'team-wh');
  otherTeam = await createTestNamespace(kubeconfig, 'team-wh-other');
  const rendered = renderChart('epreuve', release, [
    '--set-json',
    `teams=${JSON.stringify([team])}`,
    '--show-only',
    'templates/operator-rbac.yaml',
    '--show-only',
    'templates/webhooks-rbac.yaml',
    '--show-only',
    'templates/admission-policy.yaml',
  ]);
  expect((await kubectl(kubeconfig, ['apply', '--server-side', '-f', '-'], rendered)).code).toBe(0);
  for (const ns of [team, otherTeam]) {
    await kubectl(kubeconfig, ['create', '-f', '-'], secret(ns, 'epreuve-webhook'));
    await kubectl(kubeconfig, ['create', '-f', '-'], secret(ns, 'other'));
  }
  // The policy is compiled and bound asynchronously: wait until it bites.
  for (let i = 0; i < 60; i++) {
    const probe = await kubectl(kubeconfig, [operator(), 'create', '-f', '-'], configMap(team, `probe-${i}`));
    if (probe.code !== 0 && /candidate namespaces it manages/.test(probe.stderr)) break;
    if (probe.code === 0) await kubectl(kubeconfig, ['delete', 'configmap', '-n', team, `probe-${i}`]);
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

describe('the webhook sender (operator) in team namespaces', () => {
  it('reads its team’s endpoint Secret and no other Secret', async () => {
    const ok = await kubectl(kubeconfig, [operator(), 'get', 'secret', '-n', team, 'epreuve-webhook']);
    expect(ok.code, ok.stderr).toBe(0);
    for (const [ns, name] of [
      [team, 'other'],
      [otherTeam, 'epreuve-webhook'],
    ]) {
      const res = await kubectl(kubeconfig, [operator(), 'get', 'secret', '-n', ns!, name!]);
      expect(res.code, `${ns}/${name}`).not.toBe(0);
      expect(res.stderr).toMatch(/forbidden/);
    }
    const list = await kubectl(kubeconfig, [operator(), 'get', 'secrets', '-n', team]);
    expect(list.stderr).toMatch(/forbidden/);
  });

  it('writes the delivery log ConfigMap and no other ConfigMap, in its teams only', async () => {
    const ok = await kubectl(
      kubeconfig,
      [operator(), 'create', '-f', '-'],
      configMap(team, 'epreuve-webhook-deliveries'),
    );
    expect(ok.code, ok.stderr).toBe(0);
    const other = await kubectl(kubeconfig, [operator(), 'create', '-f', '-'], configMap(team, 'planted'));
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/may only write configmaps in candidate namespaces it manages/);
    const elsewhere = await kubectl(
      kubeconfig,
      [operator(), 'create', '-f', '-'],
      configMap(otherTeam, 'epreuve-webhook-deliveries'),
    );
    expect(elsewhere.code).not.toBe(0);
    expect(elsewhere.stderr).toMatch(/forbidden/);
  });

  it('may read and mark Submissions', async () => {
    for (const verb of ['list', 'watch', 'patch']) {
      const res = await kubectl(kubeconfig, [
        operator(),
        'auth',
        'can-i',
        verb,
        'submissions.epreuve.dev',
        '-n',
        team,
      ]);
      expect(res.stdout.trim(), verb).toBe('yes');
    }
    const del = await kubectl(kubeconfig, [
      operator(),
      'auth',
      'can-i',
      'delete',
      'submissions.epreuve.dev',
      '-n',
      team,
    ]);
    expect(del.stdout.trim()).toBe('no');
  });
});
