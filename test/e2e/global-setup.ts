import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { LocalCluster } from '../../hack/cluster/cluster.ts';
import { applySampleTemplate, installPlatform } from '../../hack/cluster/platform.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    e2e: {
      kubeconfig: string;
      /** The API as candidates and staff reach it (the API Service's NodePort on the node). */
      apiUrl: string;
      /** A staff API key (admin of the team below). */
      apiKey: string;
      /** A team namespace with the sample templates. */
      team: string;
    };
  }
}

const TEAM = 'hiring';
const API_URL = 'http://10.244.0.1:30080';

/**
 * The e2e tier's cluster: the built-in single-node cluster (hack/cluster), Épreuve installed on it
 * with `helm upgrade --install` and test/e2e/values.yaml, the sample templates in a team namespace.
 * Stopping it must leave nothing behind on the machine: teardown fails the run otherwise.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = new LocalCluster();
  const started = Date.now();
  const progress = (m: string) =>
    console.log(`e2e setup (${((Date.now() - started) / 1000).toFixed(0)} s): ${m}`);
  try {
    await cluster.start({ progress });
    const kubeconfig = cluster.kubeconfigPath;
    const { apiKey } = await installPlatform({
      kubeconfig,
      valuesFiles: [join(import.meta.dirname, 'values.yaml')],
      teams: [TEAM],
      progress,
    });
    for (const t of ['data-engineer', 'backend-engineer']) await applySampleTemplate(kubeconfig, TEAM, t);
    progress('ready');
    project.provide('e2e', { kubeconfig, apiUrl: API_URL, apiKey, team: TEAM });
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return async () => {
    await cluster.stop();
    const left = cluster.leftovers();
    if (left.length > 0) throw new Error(`the cluster left things behind: ${left.join('; ')}`);
    console.log('e2e teardown: cluster stopped, nothing left behind');
  };
}
