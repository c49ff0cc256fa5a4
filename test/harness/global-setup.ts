import { homedir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureKubeBinaries } from '../../hack/cluster/assets.ts';
import { ControlPlane } from '../../hack/cluster/control-plane.ts';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { PostgresServer } from '../../hack/cluster/postgres.ts';
import { installCrds } from './kube.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    /** Superuser connection to a throwaway PostgreSQL server (tests create their own databases). */
    postgres: { host: string; port: number; user: string; password: string };
    /** URL of a MongoDB wire-protocol server (FerretDB, no authentication). */
    mongoUrl: string;
  }
}

/**
 * Starts the real servers the integration suites share, once per run: a Kubernetes control plane
 * (or, with USE_EXISTING_CLUSTER=true, $KUBECONFIG as envtest does) with the CRDs installed, a
 * PostgreSQL and a MongoDB wire-protocol server. Everything is stopped afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  ensureKubeBinaries(['kube-apiserver', 'kube-controller-manager', 'kubectl']);
  const existing = process.env.USE_EXISTING_CLUSTER === 'true';
  const controlPlane = existing ? undefined : new ControlPlane();
  const postgres = new PostgresServer();
  const ferret = new FerretServer();
  const stopAll = async () => {
    await Promise.allSettled([controlPlane?.stop(), postgres.stop(), ferret.stop()]);
  };
  const started = Date.now();
  try {
    await Promise.all([controlPlane?.start(), postgres.start(), ferret.start()]);
    const kubeconfig =
      controlPlane?.kubeconfigPath ?? process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config');
    await installCrds(kubeconfig);
    console.log(
      `servers ready in ${Date.now() - started} ms: ${controlPlane ? `kube-apiserver ${controlPlane.apiServerUrl}` : `existing cluster (${kubeconfig})`}, postgres ${postgres.version} 127.0.0.1:${postgres.port}, ferretdb ${ferret.url}`,
    );
    project.provide('kubeconfig', kubeconfig);
    const { host, port, user, password } = postgres.connection as {
      host: string;
      port: number;
      user: string;
      password: string;
    };
    project.provide('postgres', { host, port, user, password });
    project.provide('mongoUrl', ferret.url);
  } catch (err) {
    await stopAll();
    throw err;
  }
  return stopAll;
}
