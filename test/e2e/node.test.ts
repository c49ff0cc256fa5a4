import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { HACK_DIR, kubeVersion } from '../../hack/cluster/assets.ts';
import { kubectl } from '../../hack/cluster/platform.ts';

/**
 * The node runs the versions hack/cluster/README.md names ("The node's versions"): the control
 * plane's kubelet on this machine's cgroup v1, and containerd 2.x built from its module, not
 * Debian's 1.6 — as the node itself reports them to the API server.
 */
const { kubeconfig } = inject('e2e');

const containerdVersion = readFileSync(join(HACK_DIR, 'tools', 'containerd', 'go.mod'), 'utf8').match(
  /^require github\.com\/containerd\/containerd\/v2 (v\S+)$/m,
)?.[1];

describe('the built-in node', () => {
  it('is Ready with the control plane’s kubelet and the pinned containerd', async () => {
    expect(containerdVersion).toMatch(/^v2\./);
    const nodes = JSON.parse(await kubectl(kubeconfig, ['get', 'nodes', '-o', 'json'])) as {
      items: Array<{
        status: {
          nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string };
          conditions: Array<{ type: string; status: string }>;
        };
      }>;
    };
    expect(nodes.items).toHaveLength(1);
    const { nodeInfo, conditions } = nodes.items[0]!.status;
    expect(nodeInfo.kubeletVersion).toBe(kubeVersion());
    // CRI reports the version without its v.
    expect(nodeInfo.containerRuntimeVersion).toBe(`containerd://${containerdVersion!.slice(1)}`);
    expect(conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
  });
});
