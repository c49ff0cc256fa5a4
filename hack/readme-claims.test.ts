import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * Version and name claims the READMEs make, read back from the files that decide them (issue 13
 * found a Go minimum, a pinned version and an envtest variable the code had left behind).
 */
const ROOT = join(import.meta.dirname, '..');
const read = (...p: string[]) => readFileSync(join(ROOT, ...p), 'utf8');
const README = read('README.md');
const CLUSTER_README = read('hack', 'cluster', 'README.md');
const CHART_README = read('charts', 'epreuve', 'README.md');

/** `require <module> vX.Y.Z` of a wrapper module's go.mod. */
const pinned = (goMod: string, module: string) => {
  const m = read(goMod).match(
    new RegExp(`^\\s*(?:require\\s+)?${module.replace(/\./g, '\\.')} (v\\S+)$`, 'm'),
  );
  if (!m) throw new Error(`${goMod} does not require ${module}`);
  return m[1]!;
};
const goLine = (goMod: string) => read(goMod).match(/^go (\d+\.\d+(?:\.\d+)?)$/m)![1]!;
const wrappers = [
  'hack/kube/go.mod',
  ...readdirSync(join(ROOT, 'hack', 'tools'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => `hack/tools/${d.name}/go.mod`),
];
const byVersion = (a: string, b: string) => {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) if ((x![i] ?? 0) !== (y![i] ?? 0)) return (x![i] ?? 0) - (y![i] ?? 0);
  return 0;
};

describe('README claims', () => {
  it('asks for the Go the wrapper modules need: the newest go line among them', () => {
    const newest = wrappers.map(goLine).sort(byVersion).at(-1)!;
    const claimed = README.match(/^- Go ≥ (\S+) /m)?.[1];
    expect(claimed).toBe(newest);
  });

  it('names the pinned Kubernetes, etcd and containerd', () => {
    const kube = pinned('hack/kube/go.mod', 'k8s.io/kubernetes');
    expect(README).toContain(`at a pinned patch (${kube})`);
    expect(README).toContain(`Kubernetes ${kube} `);
    expect(CLUSTER_README).toContain(`| Kubernetes | ${kube} binaries`);
    expect(CLUSTER_README).toContain(`| kubelet | **${kube}**`);
    expect(README).toContain(
      `etcd ${pinned('hack/tools/etcd/go.mod', 'go.etcd.io/etcd/server/v3')} is built`,
    );
    const containerd = pinned('hack/tools/containerd/go.mod', 'github.com/containerd/containerd/v2');
    expect(CLUSTER_README).toContain(`containerd ${containerd} (daemon`);
    expect(CLUSTER_README).toContain(`| containerd | ${containerd} from the Go module proxy`);
  });

  it('lists only envtest variables the harness reads', () => {
    const harness = read('hack', 'cluster', 'control-plane.ts') + read('hack', 'cluster', 'assets.ts');
    const named = [...README.matchAll(/`((?:KUBEBUILDER|TEST_ASSET)_[A-Z_]+)`/g)].map((m) => m[1]!);
    expect(named).toContain('KUBEBUILDER_CONTROLPLANE_START_TIMEOUT');
    expect(named).not.toContain('KUBEBUILDER_CONTROLPLANE_START_TIMEOUT_MS');
    for (const v of named) {
      // TEST_ASSET_<BINARY> is built from the binary's name (assets.ts): the binary must be one.
      const binary = v
        .match(/^TEST_ASSET_(\w+)$/)?.[1]
        ?.toLowerCase()
        .replaceAll('_', '-');
      expect(harness, v).toMatch(binary ? `| '${binary}'` : new RegExp(`\\b${v}\\b`));
    }
  });
});

describe('chart README claims', () => {
  it('states the kubeVersion Chart.yaml declares', () => {
    const chart = parse(read('charts', 'epreuve', 'Chart.yaml')) as { kubeVersion: string };
    expect(CHART_README).toContain(`\`kubeVersion: "${chart.kubeVersion}"\``);
  });

  it('describes every alert of the rule file, and no other', () => {
    const rules = parse(read('charts', 'epreuve', 'rules', 'epreuve.rules.yaml')) as {
      groups: Array<{ rules: Array<{ alert?: string }> }>;
    };
    const alerts = rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
    const described = [...CHART_README.matchAll(/^- `(Epreuve\w+)` \(/gm)].map((m) => m[1]!);
    expect(described.sort()).toEqual([...alerts].sort());
  });
});
