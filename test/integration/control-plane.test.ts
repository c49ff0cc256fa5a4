import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { findBinary, kubeVersion } from '../../hack/cluster/assets.ts';
import { ControlPlane } from '../../hack/cluster/control-plane.ts';
import { clients, createTestNamespace, eventually, isNotFound, kubectl } from '../harness/kube.ts';

/** The harness itself: what envtest cannot do (namespace deletion, GC), and clean shutdown. */
const kubeconfig = inject('kubeconfig');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** PIDs of every process whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) found.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

describe('the control plane the suites run on', () => {
  it('runs the pinned Kubernetes on etcd 3.6', async () => {
    const res = await kubectl(kubeconfig, ['version', '-o', 'json']);
    expect(res.code).toBe(0);
    const { clientVersion, serverVersion } = JSON.parse(res.stdout);
    expect(kubeVersion()).toMatch(/^v1\.36\./);
    expect([clientVersion.gitVersion, serverVersion.gitVersion]).toEqual([kubeVersion(), kubeVersion()]);
    expect(execFileSync(findBinary('etcd'), ['--version'], { encoding: 'utf8' })).toMatch(
      /^etcd Version: 3\.6\.\d+$/m,
    );
  });

  it('really deletes namespaces and their contents (kube-controller-manager runs)', async () => {
    const { core } = clients(kubeconfig);
    const ns = await createTestNamespace(kubeconfig, 'nsdel');
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'x' }, data: { a: 'b' } },
    });
    await core.deleteNamespace({ name: ns });
    await eventually(async () => {
      const gone = await core.readNamespace({ name: ns }).then(() => false, isNotFound);
      expect(gone).toBe(true);
    }, 60_000);
  });

  it('garbage-collects dependents whose owner is deleted', async () => {
    const { core } = clients(kubeconfig);
    const ns = await createTestNamespace(kubeconfig, 'gc');
    const owner = await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'owner' } },
    });
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: {
          name: 'dependent',
          ownerReferences: [
            { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! },
          ],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'owner' });
    await eventually(async () => {
      const gone = await core
        .readNamespacedConfigMap({ namespace: ns, name: 'dependent' })
        .then(() => false, isNotFound);
      expect(gone).toBe(true);
    }, 60_000);
  });

  it('publishes the cluster CA into every namespace (root-ca-file)', async () => {
    const { core } = clients(kubeconfig);
    const ns = await createTestNamespace(kubeconfig, 'rootca');
    await eventually(async () => {
      const cm = await core.readNamespacedConfigMap({ namespace: ns, name: 'kube-root-ca.crt' });
      expect(cm.data?.['ca.crt']).toContain('BEGIN CERTIFICATE');
    });
  });
});

describe('ControlPlane', () => {
  it('leaves no process and no files behind when stopped', async () => {
    const cp = new ControlPlane();
    await cp.start();
    const pids = cp.pids;
    expect(pids).toHaveLength(3);
    expect(pids.every(alive)).toBe(true);
    expect(processesMentioning(cp.dir).length).toBeGreaterThanOrEqual(3);
    await cp.stop();
    await eventually(async () => expect(pids.filter(alive)).toEqual([]), 15_000);
    await eventually(async () => expect(processesMentioning(cp.dir)).toEqual([]), 15_000);
    expect(existsSync(cp.dir)).toBe(false);
  }, 180_000);

  it('shows the tail of a component log when it fails to start, and cleans up', async () => {
    const cp = new ControlPlane({ apiServerFlags: ['--no-such-flag'], withoutControllerManager: true });
    await expect(cp.start()).rejects.toThrow(
      /kube-apiserver exited \(1\) while starting; last log lines:\n[\s\S]*unknown flag: --no-such-flag/,
    );
    await eventually(async () => expect(processesMentioning(cp.dir)).toEqual([]), 15_000);
    expect(existsSync(cp.dir)).toBe(false);
  }, 120_000);
});
