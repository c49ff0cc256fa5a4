import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { goTool } from '../../hack/cluster/assets.ts';
import { createTestNamespace, kubectl } from '../harness/kube.ts';

/**
 * Platform teams installed Épreuve with Helm 3; the project now pins Helm 4. A release installed
 * by Helm 3 (hack/tools/helm3, built only for this test) is upgraded, then rolled back, in place
 * by the pinned Helm 4, against the real API server.
 */
const kubeconfig = inject('kubeconfig');
const CHART = join(import.meta.dirname, '..', '..', 'charts', 'epreuve');
const RELEASE = 'epreuve';
let helm3: string;
let helm4: string;
let ns: string;

function helm(bin: string, args: string[]): string {
  const res = spawnSync(bin, [...args, `--kubeconfig=${kubeconfig}`, `--namespace=${ns}`], {
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  return res.stdout;
}

interface Revision {
  revision: number;
  status: string;
  description: string;
}
const history = (bin: string): Revision[] => JSON.parse(helm(bin, ['history', RELEASE, '-o', 'json']));

/** Kind/name of every object in the release's current manifest. */
function releaseObjects(): Array<{ kind: string; name: string; namespaced: boolean }> {
  return parseAllDocuments(helm(helm4, ['get', 'manifest', RELEASE]))
    .map((d) => d.toJS() as { kind?: string; metadata?: { name: string; namespace?: string } } | null)
    .filter((o): o is { kind: string; metadata: { name: string } } => !!o?.kind)
    .map((o) => ({ kind: o.kind, name: o.metadata.name, namespaced: !o.kind.startsWith('Cluster') }));
}

async function operatorReplicas(): Promise<number> {
  const res = await kubectl(kubeconfig, ['-n', ns, 'get', 'deployment', 'epreuve-operator', '-o', 'json']);
  expect(res.stderr).toBe('');
  return JSON.parse(res.stdout).spec.replicas;
}

beforeAll(async () => {
  // Both are built by `make tools`; cold, each takes minutes.
  helm3 = goTool('helm3');
  helm4 = goTool('helm');
  ns = await createTestNamespace(kubeconfig, 'helm-upgrade');
}, 1_200_000);

afterAll(() => {
  // Cluster-scoped objects (ClusterRoles…) outlive the namespace: uninstall. CRDs stay, as Helm keeps them.
  if (ns) spawnSync(helm4, ['uninstall', RELEASE, `--kubeconfig=${kubeconfig}`, `--namespace=${ns}`]);
});

describe('a release installed by Helm 3, upgraded by Helm 4', () => {
  it('pins Helm 4 for the project and Helm 3 for this test', () => {
    expect(spawnSync(helm4, ['version', '--short'], { encoding: 'utf8' }).stdout).toMatch(/^v4\.3\.\d+/);
    expect(spawnSync(helm3, ['version', '--short'], { encoding: 'utf8' }).stdout).toMatch(/^v3\.22\.\d+/);
  });

  it('is upgraded in place: new revision deployed, values applied, every object present', async () => {
    helm(helm3, ['install', RELEASE, CHART, '--set', 'operator.replicas=1']);
    expect(history(helm3).map((r) => [r.revision, r.status])).toEqual([[1, 'deployed']]);
    expect(await operatorReplicas()).toBe(1);

    const out = helm(helm4, ['upgrade', RELEASE, CHART, '--set', 'operator.replicas=3']);
    expect(out).toMatch(/has been upgraded/);
    expect(history(helm4).map((r) => [r.revision, r.status, r.description])).toEqual([
      [1, 'superseded', 'Install complete'],
      [2, 'deployed', 'Upgrade complete'],
    ]);
    expect(await operatorReplicas()).toBe(3);

    const objects = releaseObjects();
    expect(objects.map((o) => o.kind)).toEqual(
      expect.arrayContaining(['Deployment', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding']),
    );
    for (const o of objects) {
      const res = await kubectl(kubeconfig, [
        ...(o.namespaced ? ['-n', ns] : []),
        'get',
        o.kind,
        o.name,
        '-o',
        'jsonpath={.metadata.annotations.meta\\.helm\\.sh/release-name}',
      ]);
      expect({ ...o, code: res.code, owner: res.stdout }).toEqual({ ...o, code: 0, owner: RELEASE });
    }
  });

  it('stays readable by Helm 3 and rolls back with Helm 4', async () => {
    // Helm 4 writes the same release records: a team can still inspect it with Helm 3.
    expect(history(helm3).map((r) => r.revision)).toEqual([1, 2]);
    helm(helm4, ['rollback', RELEASE, '1']);
    expect(history(helm4).map((r) => [r.revision, r.status])).toEqual([
      [1, 'superseded'],
      [2, 'superseded'],
      [3, 'deployed'],
    ]);
    expect(await operatorReplicas()).toBe(1);
  });
});
