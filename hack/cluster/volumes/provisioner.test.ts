import { describe, expect, it } from 'vitest';
import { type Claim, PROVISIONER, plan, STORAGE_CLASS, type Volume, volumeFor } from './provisioner.ts';

const claim = (name: string, extra: Partial<Claim['spec']> = {}, phase = 'Pending'): Claim => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name, namespace: 'ns', uid: `uid-${name}` },
  spec: { storageClassName: STORAGE_CLASS, resources: { requests: { storage: '2Gi' } }, ...extra },
  status: { phase },
});

describe('local volumes', () => {
  it('makes a local volume bound to the claim, on the node, with its size', () => {
    const v = volumeFor(claim('data-pg-0'), '/run/x/volumes', 'node-a') as Volume & {
      spec: Record<string, unknown>;
    };
    expect(v.metadata.name).toBe('pvc-uid-data-pg-0');
    expect(v.spec.local).toEqual({ path: '/run/x/volumes/pvc-uid-data-pg-0' });
    expect(v.spec.claimRef).toMatchObject({ namespace: 'ns', name: 'data-pg-0', uid: 'uid-data-pg-0' });
    expect(v.spec.capacity).toEqual({ storage: '2Gi' });
    expect(JSON.stringify(v.spec.nodeAffinity)).toContain('"node-a"');
    expect(v.metadata.annotations?.['pv.kubernetes.io/provisioned-by']).toBe(PROVISIONER);
  });

  it('provisions pending claims of its class once, and deletes its released volumes only', () => {
    const mine = volumeFor(claim('a'), '/v', 'n');
    const released = { ...volumeFor(claim('b'), '/v', 'n'), status: { phase: 'Released' } };
    const foreign: Volume = { ...released, metadata: { name: 'other' } };
    const { provision, remove } = plan(
      [
        claim('a'),
        claim('b', {}, 'Lost'),
        claim('c'),
        claim('d', { storageClassName: 'other' }),
        claim('e', { volumeName: 'x' }),
        claim('f', {}, 'Bound'),
      ],
      [mine, released, foreign],
    );
    expect(provision.map((c) => c.metadata.name)).toEqual(['c']);
    expect(remove.map((v) => v.metadata.name)).toEqual(['pvc-uid-b']);
  });
});
