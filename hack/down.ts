/**
 * `make down`: removes what `make up` made. On the built-in cluster: everything (processes, mounts,
 * network namespaces, interfaces, iptables rules; checked). On another kube-context: the Helm
 * release and the demo namespace (CRDs stay, as Helm leaves them: they may hold others' data).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { HACK_DIR } from './cluster/assets.ts';
import { helmBinary, kubectl, PLATFORM_NAMESPACE, UP_DIR, UP_STATE } from './cluster/platform.ts';

const up = existsSync(UP_STATE)
  ? (JSON.parse(readFileSync(UP_STATE, 'utf8')) as { builtIn: boolean; kubeconfig: string; team: string })
  : undefined;
if (up && !up.builtIn) {
  console.log(`down: uninstalling from ${up.kubeconfig}`);
  execFileSync(
    await helmBinary(),
    [
      'uninstall',
      'epreuve',
      `--kubeconfig=${up.kubeconfig}`,
      `--namespace=${PLATFORM_NAMESPACE}`,
      '--wait',
      '--ignore-not-found',
    ],
    { stdio: 'inherit' },
  );
  await kubectl(up.kubeconfig, [
    'delete',
    'namespace',
    up.team,
    PLATFORM_NAMESPACE,
    '--ignore-not-found',
    '--wait=true',
  ]);
}
rmSync(UP_STATE, { force: true });
rmSync(join(UP_DIR, 'api-key'), { force: true });
try {
  execFileSync(process.execPath, [join(HACK_DIR, 'cluster', 'main.ts'), 'down'], { stdio: 'inherit' });
} catch {
  process.exit(1);
}
