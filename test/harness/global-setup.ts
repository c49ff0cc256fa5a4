import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureKubeBinaries } from '../../hack/cluster/assets.ts';
import { ControlPlane } from '../../hack/cluster/control-plane.ts';
import { installCrds } from './kube.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
  }
}

/**
 * Starts one real control plane for the whole integration run (or, with USE_EXISTING_CLUSTER=true,
 * uses $KUBECONFIG as envtest does), installs the CRDs, and stops everything afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  ensureKubeBinaries(['kube-apiserver', 'kube-controller-manager', 'kubectl']);
  let controlPlane: ControlPlane | undefined;
  let kubeconfig: string;
  if (process.env.USE_EXISTING_CLUSTER === 'true') {
    kubeconfig = process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config');
  } else {
    const started = Date.now();
    controlPlane = new ControlPlane();
    await controlPlane.start();
    kubeconfig = controlPlane.kubeconfigPath;
    console.log(`control plane ready at ${controlPlane.apiServerUrl} in ${Date.now() - started} ms`);
  }
  try {
    await installCrds(kubeconfig);
  } catch (err) {
    await controlPlane?.stop();
    throw err;
  }
  project.provide('kubeconfig', kubeconfig);
  return async () => {
    await controlPlane?.stop();
  };
}
