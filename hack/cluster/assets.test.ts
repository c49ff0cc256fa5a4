import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { findBinary, kubeBinDir, kubeVersion } from './assets.ts';

/** Where the local control plane's binaries come from (envtest's conventions, then the caches). */
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'epreuve-assets-'));
  vi.stubEnv('EPREUVE_CACHE', join(dir, 'cache'));
  vi.stubEnv('KUBEBUILDER_ASSETS', '');
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

function executable(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, '#!/bin/sh\n');
  chmodSync(path, 0o755);
  return path;
}

describe('assets', () => {
  it('reads the pinned Kubernetes version and keys the cache by it', () => {
    expect(kubeVersion()).toMatch(/^v1\.36\.\d+$/);
    expect(kubeBinDir()).toBe(join(dir, 'cache', 'kube', kubeVersion(), 'bin'));
  });

  it('prefers TEST_ASSET_<NAME>, then KUBEBUILDER_ASSETS, for etcd as for Kubernetes', () => {
    const etcd = executable('etcd');
    vi.stubEnv('TEST_ASSET_ETCD', etcd);
    expect(findBinary('etcd')).toBe(etcd);
    vi.stubEnv('TEST_ASSET_ETCD', '');
    vi.stubEnv('KUBEBUILDER_ASSETS', dir);
    executable('kube-apiserver');
    expect(findBinary('etcd')).toBe(etcd);
    expect(findBinary('kube-apiserver')).toBe(join(dir, 'kube-apiserver'));
  });

  it('says where it looked and how to build a missing Kubernetes binary', () => {
    vi.stubEnv('TEST_ASSET_KUBECTL', join(dir, 'nope'));
    expect(() => findBinary('kubectl')).toThrow(
      `kubectl not found; looked in ${join(dir, 'nope')} (TEST_ASSET_KUBECTL), ${join(kubeBinDir(), 'kubectl')} (hack/build-kube.sh cache): build it with \`hack/build-kube.sh\``,
    );
  });
});
