import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  Informer,
  isConflict,
  type KubeClient,
  type KubeObject,
  type ResourceType,
  resourcePath,
} from '@epreuve/kube';
import type { Logger } from 'pino';

/**
 * Dynamic volumes for the local single-node cluster: claims of the `epreuve-local` class get a
 * `local` PersistentVolume (kubelet applies the pod's fsGroup to local volumes, unlike hostPath,
 * so non-root sandboxes can write) on a directory of the node; released volumes are deleted with
 * their directory. kube-controller-manager's hostPath provisioner would do neither (root-owned
 * 0750 directories under /tmp). Level-triggered: every event re-evaluates the whole cache.
 */
export const PROVISIONER = 'epreuve.dev/local';
export const STORAGE_CLASS = 'epreuve-local';

export interface Claim extends KubeObject {
  spec: { storageClassName?: string; volumeName?: string; resources?: { requests?: { storage?: string } } };
  status?: { phase?: string };
}
export interface Volume extends KubeObject {
  spec: { claimRef?: { namespace?: string; name?: string; uid?: string }; local?: { path: string } };
  status?: { phase?: string };
}

const PVC: ResourceType = {
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  plural: 'persistentvolumeclaims',
  namespaced: true,
};
const PV: ResourceType = {
  apiVersion: 'v1',
  kind: 'PersistentVolume',
  plural: 'persistentvolumes',
  namespaced: false,
};

/** The volume a pending claim needs (pure). */
export function volumeFor(claim: Claim, baseDir: string, nodeName: string): Volume {
  const uid = claim.metadata.uid!;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: `pvc-${uid}`,
      annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER },
    },
    spec: {
      capacity: { storage: claim.spec.resources?.requests?.storage ?? '1Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: STORAGE_CLASS,
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: claim.metadata.namespace,
        name: claim.metadata.name,
        uid,
      },
      local: { path: join(baseDir, `pvc-${uid}`) },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName] }] },
          ],
        },
      },
    } as Volume['spec'],
  };
}

/** What to do now (pure): claims that need a volume, volumes to delete. */
export function plan(claims: Claim[], volumes: Volume[]): { provision: Claim[]; remove: Volume[] } {
  const ours = volumes.filter(
    (v) => v.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] === PROVISIONER,
  );
  const claimed = new Set(ours.map((v) => v.spec.claimRef?.uid));
  return {
    provision: claims.filter(
      (c) =>
        c.spec.storageClassName === STORAGE_CLASS &&
        !c.spec.volumeName &&
        c.status?.phase !== 'Bound' &&
        !c.metadata.deletionTimestamp &&
        !claimed.has(c.metadata.uid),
    ),
    remove: ours.filter((v) => v.status?.phase === 'Released' || v.status?.phase === 'Failed'),
  };
}

export class LocalVolumeProvisioner {
  private readonly claims: Informer<Claim>;
  private readonly volumes: Informer<Volume>;
  private busy: Promise<void> = Promise.resolve();
  private readonly client: KubeClient;
  private readonly opts: { baseDir: string; nodeName: string; log: Logger };

  constructor(client: KubeClient, opts: { baseDir: string; nodeName: string; log: Logger }) {
    this.client = client;
    this.opts = opts;
    this.claims = new Informer<Claim>(client, { type: PVC, log: opts.log });
    this.volumes = new Informer<Volume>(client, { type: PV, log: opts.log });
    const changed = {
      add: () => this.schedule(),
      update: () => this.schedule(),
      delete: () => this.schedule(),
    };
    this.claims.on(changed);
    this.volumes.on(changed);
  }

  async run(signal: AbortSignal): Promise<void> {
    void this.claims.run(signal);
    void this.volumes.run(signal);
    await Promise.all([this.claims.waitForSync(), this.volumes.waitForSync()]);
    this.schedule();
  }

  private schedule(): void {
    this.busy = this.busy
      .then(() => this.sync())
      .catch((err) => this.opts.log.error({ err }, 'volume sync failed'));
  }

  private async sync(): Promise<void> {
    const { provision, remove } = plan(this.claims.list(), this.volumes.list());
    for (const claim of provision) {
      const volume = volumeFor(claim, this.opts.baseDir, this.opts.nodeName);
      mkdirSync(volume.spec.local!.path, { recursive: true, mode: 0o755 });
      // PersistentVolume is not in the operator's kind table (it never touches one): plain POST.
      await this.client.request('POST', resourcePath(PV), { body: volume }).catch((err) => {
        if (!isConflict(err)) throw err; // already exists: an earlier pass made it
      });
      this.opts.log.info(
        { claim: `${claim.metadata.namespace}/${claim.metadata.name}`, volume: volume.metadata.name },
        'provisioned',
      );
    }
    for (const volume of remove) {
      rmSync(volume.spec.local!.path, { recursive: true, force: true });
      await this.client.delete(PV, undefined, volume.metadata.name!);
      this.opts.log.info({ volume: volume.metadata.name }, 'deleted');
    }
  }
}
