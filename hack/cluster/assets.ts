import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Finds the binaries a local control plane needs, following controller-runtime envtest's
 * conventions: TEST_ASSET_<NAME> first, then $KUBEBUILDER_ASSETS/<name>, then Épreuve's own
 * build cache: hack/build-kube.sh for Kubernetes, hack/build-go-tool.sh etcd for etcd.
 */
export const HACK_DIR = join(fileURLToPath(import.meta.url), '..', '..');

export type Binary =
  | 'etcd'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kubectl'
  | 'kube-scheduler'
  | 'kubelet'
  | 'kube-proxy';

/** The pinned Kubernetes version, read from the wrapper module. */
export function kubeVersion(): string {
  const gomod = readFileSync(join(HACK_DIR, 'kube', 'go.mod'), 'utf8');
  const m = /^require k8s\.io\/kubernetes (v[0-9.]+)$/m.exec(gomod);
  if (!m) throw new Error('cannot read the k8s.io/kubernetes version from hack/kube/go.mod');
  return m[1]!;
}

export function cacheDir(): string {
  return process.env.EPREUVE_CACHE ?? join(homedir(), '.cache', 'epreuve');
}

export function kubeBinDir(): string {
  return join(cacheDir(), 'kube', kubeVersion(), 'bin');
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where each candidate location for a binary comes from, for error messages. */
function candidates(name: Binary): Array<[string, string]> {
  const env = `TEST_ASSET_${name.toUpperCase().replaceAll('-', '_')}`;
  const out: Array<[string, string]> = [];
  if (process.env[env]) out.push([process.env[env], env]);
  if (process.env.KUBEBUILDER_ASSETS)
    out.push([join(process.env.KUBEBUILDER_ASSETS, name), 'KUBEBUILDER_ASSETS']);
  // etcd's cache path carries its wrapper's hash: only hack/build-go-tool.sh knows it (see goTool).
  if (name !== 'etcd') out.push([join(kubeBinDir(), name), 'hack/build-kube.sh cache']);
  return out;
}

/**
 * Path of a pinned Go tool from hack/tools/<name> (etcd, containerd, helm…): hack/build-go-tool.sh
 * builds it into the cache the first time (minutes), then only prints its path.
 */
export function goTool(name: string): string {
  let path = goTools.get(name);
  if (!path) {
    path = execFileSync(join(HACK_DIR, 'build-go-tool.sh'), [name], { stdio: ['ignore', 'pipe', 'inherit'] })
      .toString()
      .trim();
    goTools.set(name, path);
  }
  return path;
}
const goTools = new Map<string, string>();

/** Path of a binary, or an error saying where it was looked for and how to get it. */
export function findBinary(name: Binary): string {
  const tried = candidates(name);
  for (const [path] of tried) if (executable(path)) return path;
  if (name === 'etcd') return goTool('etcd');
  const hint = 'build it with `hack/build-kube.sh`';
  throw new Error(
    `${name} not found; looked in ${tried.map(([p, from]) => `${p} (${from})`).join(', ')}: ${hint}`,
  );
}

/**
 * Makes sure the Kubernetes binaries (and etcd) exist, building missing ones into the cache (tens
 * of minutes cold, seconds warm). Binaries pointed at by TEST_ASSET_* or KUBEBUILDER_ASSETS are
 * used as they are.
 */
export function ensureKubeBinaries(names: Binary[]): void {
  const missing = names.filter((n) => !candidates(n).some(([p]) => executable(p)));
  if (missing.includes('etcd')) goTool('etcd');
  const kube = missing.filter((n) => n !== 'etcd');
  if (kube.length === 0) return;
  execFileSync(join(HACK_DIR, 'build-kube.sh'), kube, { stdio: ['ignore', 'ignore', 'inherit'] });
}
