import { describe, expect, inject, it } from 'vitest';
import { kubectl } from '../harness/kube.ts';
import { installThirdPartyCrds, THIRD_PARTY_CRDS, thirdPartyCrdFiles } from '../harness/third-party-crds.ts';

/** The Prometheus-operator and Argo CD CRDs other suites dry-run against, from pinned Go modules. */
const kubeconfig = inject('kubeconfig');

describe('third-party CRDs from pinned Go modules', () => {
  it.each(Object.keys(THIRD_PARTY_CRDS) as Array<keyof typeof THIRD_PARTY_CRDS>)(
    'installs the %s CRDs, twice without error, and the API server serves them',
    async (which) => {
      await installThirdPartyCrds(kubeconfig, which);
      await installThirdPartyCrds(kubeconfig, which);
      const res = await kubectl(kubeconfig, ['get', 'crd', ...THIRD_PARTY_CRDS[which].names, '-o', 'name']);
      expect(res.stdout.trim().split('\n')).toHaveLength(THIRD_PARTY_CRDS[which].names.length);
    },
    300_000,
  );

  it('refuses a module whose hash differs from the pin', async () => {
    const pin = {
      ...THIRD_PARTY_CRDS['prometheus-operator'],
      sum: 'h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    };
    await expect(thirdPartyCrdFiles('prometheus-operator', pin as never)).rejects.toThrow(
      /does not match the pinned h1:AAAA/,
    );
  });

  it('names the module and version when the download fails', async () => {
    const pin = { ...THIRD_PARTY_CRDS['prometheus-operator'], version: 'v0.0.0-no-such-version' };
    await expect(thirdPartyCrdFiles('prometheus-operator', pin as never)).rejects.toThrow(
      /prometheus-operator@v0.0.0-no-such-version/,
    );
  });
});
