import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HACK_DIR } from './assets.ts';
import { render } from './node.ts';

/** The node's configuration templates (hack/node), rendered as startNode renders them. */
const NODE_DIR = join(HACK_DIR, 'node');
const VALUES = {
  DIR: '/dev/shm/epreuve-node-x',
  PKI: '/dev/shm/epreuve-cp-x/pki',
  BRIDGE: 'epreuve0',
  POD_CIDR: '10.244.0.0/24',
  GATEWAY: '10.244.0.1',
  SERVICE_CIDR: '10.0.0.0/16',
  DNS_IP: '10.0.0.10',
  NODE_NAME: 'epreuve-node',
  HEALTHZ_PORT: 10248,
  METRICS_PORT: 10249,
};
const template = (file: string) => render(readFileSync(join(NODE_DIR, file), 'utf8'), VALUES);

describe('render', () => {
  it('fills every placeholder and refuses an unknown one', () => {
    expect(render('a {{DIR}} b {{HEALTHZ_PORT}}', VALUES)).toBe('a /dev/shm/epreuve-node-x b 10248');
    expect(() => render('{{NOPE}}', VALUES)).toThrow('no value for {{NOPE}}');
  });

  it.each(readdirSync(NODE_DIR))('renders hack/node/%s with the values startNode passes', (file) => {
    expect(template(file)).not.toMatch(/\{\{[A-Z_]+\}\}/);
  });
});

describe('the node configuration', () => {
  it('lets kubelet run on this cgroup v1 machine with the cgroupfs driver', () => {
    const kubelet = parse(template('kubelet.yaml'));
    expect(kubelet).toMatchObject({
      kind: 'KubeletConfiguration',
      cgroupDriver: 'cgroupfs',
      failCgroupV1: false,
      containerRuntimeEndpoint: 'unix:///dev/shm/epreuve-node-x/containerd/containerd.sock',
    });
  });

  it('configures containerd 2.4 (config version 4, CRI split into images and runtime plugins)', () => {
    const toml = template('containerd.toml');
    expect(toml).toMatch(/^version = 4$/m);
    expect(toml).toContain(
      '[plugins."io.containerd.cri.v1.images".pinned_images]\n    sandbox = "localhost/pause:3.10"',
    );
    expect(toml).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]');
    expect(toml).toMatch(/SystemdCgroup = false/);
    // Older layouts are ignored by 2.4 without an error (a [grpc] section left containerd on
    // /run/containerd/containerd.sock): none of them is left.
    expect(toml).not.toMatch(
      /sandbox_image|io\.containerd\.grpc\.v1\.cri"\.(containerd|cni)|^\[(grpc|ttrpc)\]/m,
    );
    expect(toml).toContain(
      '[plugins."io.containerd.server.v1.grpc"]\n  address = "/dev/shm/epreuve-node-x/containerd/containerd.sock"',
    );
    // Everything it writes stays in the run directory.
    for (const [, path] of toml.matchAll(/^(?:root|state|\s+address|\s+conf_dir) = "([^"]+)"$/gm))
      expect(path).toMatch(/^\/dev\/shm\/epreuve-node-x\//);
  });
});
