import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { allCrds, KINDS } from '@epreuve/crds';
import { KubeClient } from '@epreuve/kube';
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
} from '@kubernetes/client-node';
import { findBinary } from '../../hack/cluster/assets.ts';

/** Clients for the cluster the suite runs against (the harness's control plane, or USE_EXISTING_CLUSTER). */
export function clients(kubeconfigPath: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    objects: KubernetesObjectApi.makeApiClient(kc),
    extensions: kc.makeApiClient(ApiextensionsV1Api),
  };
}

/** Épreuve's own REST client (server-side apply, merge patch, raw JSON) with a generous budget. */
export function kube(kubeconfigPath: string): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return new KubeClient(kc, {
    qps: 200,
    burst: 400,
    userAgent: 'epreuve-tests',
    kinds: Object.values(KINDS),
  });
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the pinned kubectl against the suite's cluster; never throws on a non-zero exit. */
export function kubectl(kubeconfigPath: string, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      findBinary('kubectl'),
      [`--kubeconfig=${kubeconfigPath}`, ...args],
      { maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/**
 * Installs the generated CRDs the way users do (kubectl server-side apply of manifests/crds) and
 * waits until the API server serves them. (client-node's typed serializer would drop `default`,
 * `enum` and `x-kubernetes-validations` from a CRD body: it expects its own camelCase names.)
 */
export async function installCrds(kubeconfigPath: string): Promise<void> {
  const dir = join(import.meta.dirname, '..', '..', 'manifests', 'crds');
  const applied = await kubectl(kubeconfigPath, [
    'apply',
    '--server-side',
    '--field-manager=epreuve-test-harness',
    '-k',
    dir,
  ]);
  if (applied.code !== 0) throw new Error(`installing CRDs failed: ${applied.stderr}`);
  const names = allCrds().map((c) => `crd/${c.metadata.name}`);
  const ready = await kubectl(kubeconfigPath, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...names,
  ]);
  if (ready.code !== 0) throw new Error(`CRDs not established: ${ready.stderr}`);
}

/** Namespaces this test file created (vitest loads the harness once per file). */
const testNamespaces = new Map<string, string>();

/** Creates a namespace with a unique name for one test file; returns its name. */
export async function createTestNamespace(kubeconfigPath: string, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await clients(kubeconfigPath).core.createNamespace({
    body: { metadata: { name, labels: { 'epreuve.dev/test': 'true' } } },
  });
  testNamespaces.set(name, kubeconfigPath);
  return name;
}

/**
 * Deletes the namespaces this file created, without waiting. Files share one control plane: an
 * assessment left behind is work for every later file's operator, which lists it at start.
 */
export async function deleteTestNamespaces(): Promise<void> {
  await Promise.all(
    [...testNamespaces].map(async ([name, kubeconfigPath]) => {
      await clients(kubeconfigPath)
        .core.deleteNamespace({ name })
        .catch((err) => {
          if (!isNotFound(err)) throw err;
        });
      testNamespaces.delete(name);
    }),
  );
}

/** Retries an assertion until it passes or the time is up; rethrows the last failure. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}
