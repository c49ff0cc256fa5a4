import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually, kubectl } from './kube.ts';

/**
 * CRDs of the tools Épreuve integrates with (Prometheus operator, Argo CD), so server-side dry runs
 * of ServiceMonitors, PrometheusRules and Argo CD Applications meet the real schemas. The YAML is
 * taken from the tools' own Go modules at pinned versions — fetched through the Go module proxy,
 * checked against the pinned go.sum hash, kept in the module cache — the way Go operator suites
 * load third-party CRDs in envtest.
 */
export const THIRD_PARTY_CRDS = {
  'prometheus-operator': {
    module: 'github.com/prometheus-operator/prometheus-operator',
    version: 'v0.85.0',
    sum: 'h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s=',
    dir: 'example/prometheus-operator-crd',
    files: ['monitoring.coreos.com_servicemonitors.yaml', 'monitoring.coreos.com_prometheusrules.yaml'],
    names: ['servicemonitors.monitoring.coreos.com', 'prometheusrules.monitoring.coreos.com'],
  },
  'argo-cd': {
    module: 'github.com/argoproj/argo-cd/v3',
    version: 'v3.5.7',
    sum: 'h1:Xm1BF+I5OgDKUG3SDK49vn2/Y5AMyaNVko+/JT08gj0=',
    dir: 'manifests/crds',
    files: ['application-crd.yaml', 'applicationset-crd.yaml', 'appproject-crd.yaml'],
    names: ['applications.argoproj.io', 'applicationsets.argoproj.io', 'appprojects.argoproj.io'],
  },
} as const;

export type ThirdParty = keyof typeof THIRD_PARTY_CRDS;
type Pin = (typeof THIRD_PARTY_CRDS)[ThirdParty];

/** Downloads the pinned module (no-op when cached) and returns the CRD files' paths. */
export async function thirdPartyCrdFiles(
  which: ThirdParty,
  pin: Pin = THIRD_PARTY_CRDS[which],
): Promise<string[]> {
  const { stdout } = await promisify(execFile)(
    'go',
    ['mod', 'download', '-json', `${pin.module}@${pin.version}`],
    { maxBuffer: 1 << 20, env: { ...process.env, GOFLAGS: '-mod=mod' } },
  ).catch((err: { stdout?: string; message: string }) => {
    // go prints a JSON object with an Error field on failure; surface it rather than the exit code.
    throw new Error(`go mod download ${pin.module}@${pin.version} failed: ${err.stdout || err.message}`);
  });
  const info = JSON.parse(stdout) as { Dir?: string; Sum?: string; Error?: string };
  if (info.Error || !info.Dir) throw new Error(`go mod download ${pin.module}@${pin.version}: ${info.Error}`);
  if (info.Sum !== pin.sum) {
    throw new Error(
      `${pin.module}@${pin.version}: module hash ${info.Sum} does not match the pinned ${pin.sum}`,
    );
  }
  return pin.files.map((f) => join(info.Dir as string, pin.dir, f));
}

/** Installs (server-side apply, idempotent) one tool's CRDs and waits until they are served. */
export async function installThirdPartyCrds(kubeconfig: string, which: ThirdParty): Promise<void> {
  const files = await thirdPartyCrdFiles(which);
  const applied = await kubectl(kubeconfig, [
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=epreuve-test-harness',
    ...files.flatMap((f) => ['-f', f]),
  ]);
  if (applied.code !== 0) throw new Error(`installing ${which} CRDs failed: ${applied.stderr}`);
  // `kubectl wait` fails outright while a just-created CRD has no status yet: retry it briefly.
  const names = THIRD_PARTY_CRDS[which].names.map((n) => `crd/${n}`);
  await eventually(async () => {
    const ready = await kubectl(kubeconfig, [
      'wait',
      '--for=condition=Established',
      '--timeout=30s',
      ...names,
    ]);
    if (ready.code !== 0) throw new Error(`${which} CRDs not established: ${ready.stderr}`);
  }, 60_000);
}
