import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { helmBinary, PLATFORM_NAMESPACE } from '../../hack/cluster/platform.ts';

/**
 * `helm test` as an operator of the platform runs it after an install or upgrade: the chart's own
 * test pods (templates/tests) check the API's /healthz and /readyz and the gateway's TLS endpoint,
 * from inside the cluster, on the release `make up` and this tier install.
 */
const { kubeconfig } = inject('e2e');
const run = promisify(execFile);

describe('helm test', () => {
  it('passes on the installed release: the API and the gateway answer from inside the cluster', async () => {
    const { stdout } = await run(
      await helmBinary(),
      ['test', 'epreuve', `--namespace=${PLATFORM_NAMESPACE}`, `--kubeconfig=${kubeconfig}`, '--timeout=3m'],
      { maxBuffer: 4 << 20 },
    );
    expect(stdout).toMatch(/STATUS: deployed/);
    const phases = [
      ...stdout.matchAll(/TEST SUITE:\s+(\S+)\s+Last Started:.*?\s+Last Completed:.*?\s+Phase:\s+(\S+)/gs),
    ];
    expect(phases.map(([, name, phase]) => [name, phase]).sort()).toEqual([
      ['epreuve-test-api', 'Succeeded'],
      ['epreuve-test-gateway', 'Succeeded'],
    ]);
  }, 240_000);
});
