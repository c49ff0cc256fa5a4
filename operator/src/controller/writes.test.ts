import type { KubeClient } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import { applyStatusIfChanged } from './writes.ts';

/** A fake client that records applies (a unit test: the real API server is in test/integration). */
function recorder() {
  const applied: unknown[] = [];
  const client = { apply: async (obj: unknown) => applied.push(obj) } as unknown as KubeClient;
  return { client, applied };
}
const obj = (status: object) => ({
  apiVersion: 'epreuve.dev/v1alpha1',
  kind: 'Assessment',
  metadata: { name: 'jane', namespace: 'team' },
  status,
});

describe('applyStatusIfChanged', () => {
  it("leaves the gateway's signals out: their presence is no change, and they are never applied", async () => {
    const { client, applied } = recorder();
    const signals = { connections: 3, clientAddresses: ['10.0.0.1'] };
    expect(await applyStatusIfChanged(client, obj({ phase: 'Ready', signals }), { phase: 'Ready' })).toBe(
      false,
    );
    expect(applied).toEqual([]);
    expect(await applyStatusIfChanged(client, obj({ phase: 'Ready', signals }), { phase: 'Expired' })).toBe(
      true,
    );
    expect(applied).toEqual([
      { ...obj({ phase: 'Expired' }), metadata: { name: 'jane', namespace: 'team' } },
    ]);
  });

  it('still writes when a field of its own must go', async () => {
    const { client, applied } = recorder();
    expect(
      await applyStatusIfChanged(client, obj({ phase: 'Ready', readyAt: 'x' }), { phase: 'Ready' }),
    ).toBe(true);
    expect(applied).toHaveLength(1);
  });
});
