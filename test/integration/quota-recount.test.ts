import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../../hack/cluster/control-plane.ts';
import { countQuota, kubectl } from '../../hack/cluster/platform.ts';
import { eventually } from '../harness/kube.ts';

/**
 * Why a team's Assessment quota was never counted on the e2e cluster, and what `make up` and the
 * e2e tier do about it (hack/cluster/platform.ts countQuota). kube-controller-manager counts a
 * custom resource only once its discovery (every 30 s) has seen the CRD; a quota it processed
 * before then is counted again only at its next full resync (5 min): it watches no additions. One
 * `helm install` creates the CRD and the quotas seconds apart, so it usually loses that race, and
 * the API server refuses every create meanwhile ("status unknown for quota").
 *
 * A control plane of its own: its controller manager's first full resync is 5 min away, so the
 * quota left alone stays uncounted for the whole test, whatever ran before.
 */
const GROUP = 'widgets.example.com';
const RESOURCE = `count/widgets.${GROUP}`;
const controlPlane = new ControlPlane();
let kubeconfig: string;
const k = (args: string[], input?: string) => kubectl(kubeconfig, args, input);
const quota = (namespace: string) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: { name: 'widgets', namespace },
    spec: { hard: { [RESOURCE]: '5' } },
  });
const used = async (namespace: string) =>
  k([
    '-n',
    namespace,
    'get',
    'resourcequota',
    'widgets',
    '-o',
    `jsonpath={.status.used.count/widgets\\.widgets\\.example\\.com}`,
  ]);

beforeAll(async () => {
  await controlPlane.start();
  kubeconfig = controlPlane.kubeconfigPath;
}, 120_000);
afterAll(async () => {
  await controlPlane.stop();
});

describe('a ResourceQuota on a custom resource, made before the quota controller discovered it', () => {
  it('is counted only once nudged (spec.hard changed and set back); left alone, it is not', async () => {
    for (const ns of ['nudged', 'alone']) {
      await k(['create', 'namespace', ns]);
      await k(['apply', '-f', '-'], quota(ns));
    }
    // Processed by the quota controller (status.hard written) before it can know the resource.
    await eventually(async () => {
      for (const ns of ['nudged', 'alone'])
        expect(
          await k(['-n', ns, 'get', 'resourcequota', 'widgets', '-o', 'jsonpath={.status.hard}']),
        ).toContain(RESOURCE);
    }, 60_000);
    await k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `widgets.${GROUP}` },
        spec: {
          group: GROUP,
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
          scope: 'Namespaced',
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            },
          ],
        },
      }),
    );
    const started = Date.now();
    // Discovery (30 s) plus a nudge every 5 s: well within a minute.
    expect(
      await countQuota(kubeconfig, 'nudged', 'widgets', RESOURCE, { timeoutMs: 75_000, nudgeEveryMs: 5_000 }),
    ).toBe(true);
    const countedAfterMs = Date.now() - started;
    expect(await used('nudged')).toBe('0');
    // The limit is back as the chart set it.
    expect(
      await k([
        '-n',
        'nudged',
        'get',
        'resourcequota',
        'widgets',
        '-o',
        `jsonpath={.spec.hard.count/widgets\\.widgets\\.example\\.com}`,
      ]),
    ).toBe('5');
    // The same quota left alone: still uncounted, 10 s after the nudged one was.
    await new Promise((r) => setTimeout(r, 10_000));
    expect(await used('alone')).toBe('');
    console.info(`quota counted ${countedAfterMs} ms after the CRD was created (with nudges)`);
  }, 150_000);

  it('answers undefined for a quota that does not exist, and refuses one without that limit', async () => {
    expect(await countQuota(kubeconfig, 'nudged', 'absent', RESOURCE)).toBeUndefined();
    await expect(countQuota(kubeconfig, 'nudged', 'widgets', 'count/other.example.com')).rejects.toThrow(
      /nudged\/widgets has no hard limit on count\/other\.example\.com/,
    );
  });
});
