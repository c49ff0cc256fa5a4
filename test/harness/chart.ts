import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { HACK_DIR, kubeVersion } from '../../hack/cluster/assets.ts';

export const CHART = join(import.meta.dirname, '..', '..', 'charts', 'epreuve');

/**
 * The chart rendered by the pinned Helm (`helm template`) for the pinned Kubernetes version, as a
 * suite applies part of it to the shared control plane: `args` picks values and templates.
 */
export function renderChart(release: string, namespace: string, args: string[]): string {
  const helm = execFileSync(join(HACK_DIR, 'build-go-tool.sh'), ['helm'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .toString()
    .trim();
  return execFileSync(
    helm,
    ['template', release, CHART, '-n', namespace, '--kube-version', kubeVersion(), ...args],
    { encoding: 'utf8' },
  );
}
