import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  assertNoCritical,
  CHART,
  kubeScore,
  kubeScorePath,
  renderChart,
  VALUE_SETS,
} from '../../hack/ci/chart-lint.ts';
import { helmPath } from '../../hack/generate-manifests.ts';

/**
 * kube-score (pinned v1.20.0, built from the Go module proxy) on the chart's render. It stands in
 * for kube-linter, which the Go module proxy refuses here (403 for golang.stackrox.io/kube-linter
 * and github.com/stackrox/kube-linter). Each check the chart does not follow is listed here with
 * its reason and carried as a `kube-score/ignore` annotation (with a comment) in the template.
 */
const IGNORED: Record<string, string> = {
  'container-ephemeral-storage-request-and-limit':
    'the containers run with a read-only root filesystem and write only logs (rotated by the ' +
    'kubelet) and, for the API, a small /tmp; values.schema.json has no ephemeral-storage ' +
    'resource, and a guessed limit would evict a healthy pod',
  'container-security-context-user-group-id':
    'uid/gid 1000 is the non-root user the images are built for (node:24-slim, USER 1000:1000); ' +
    'runAsNonRoot, no privilege escalation, all capabilities dropped and RuntimeDefault seccomp ' +
    'hold (Pod Security restricted), so a host uid clash needs a container escape first',
  'container-image-pull-policy':
    'images are tagged with a release tag or a commit SHA and never re-tagged by CI, so ' +
    'IfNotPresent always runs the intended image without a registry round trip per restart; ' +
    'image.pullPolicy=Always is a value for clusters that must re-check imagePullSecrets',
};

let helm: string;
let bin: string;
const renders = new Map<string, string>();

beforeAll(() => {
  helm = helmPath();
  bin = kubeScorePath();
  for (const [label, args] of Object.entries(VALUE_SETS)) renders.set(label, renderChart(args, helm));
}, 600_000);

const ignoreAnnotations = (manifest: string) =>
  parseAllDocuments(manifest)
    .map((d) => d.toJS())
    .filter((o) => o?.metadata?.annotations?.['kube-score/ignore'])
    .map((o) => ({
      object: `${o.kind}/${o.metadata.name}`,
      checks: String(o.metadata.annotations['kube-score/ignore']).split(','),
    }));

describe('kube-score on the chart', () => {
  it.each(Object.keys(VALUE_SETS))('finds nothing CRITICAL with %s', (label) => {
    const findings = assertNoCritical(renders.get(label)!, label, bin);
    // What is left are warnings (egress NetworkPolicy, host anti-affinity): printed by CI.
    for (const f of findings) expect(f.grade).toBe('WARNING');
  });

  it('ignores only the listed checks, each of them on every Deployment and helm test Pod', () => {
    const annotated = ignoreAnnotations(renders.get('everything on')!);
    expect(annotated.map((a) => a.object).sort()).toEqual([
      'Deployment/epreuve-api',
      'Deployment/epreuve-gateway',
      'Deployment/epreuve-operator',
      'Pod/epreuve-test-api',
      'Pod/epreuve-test-gateway',
    ]);
    for (const a of annotated) expect(a.checks.sort()).toEqual(Object.keys(IGNORED).sort());
    for (const reason of Object.values(IGNORED)) expect(reason.length).toBeGreaterThan(40);
  });

  it('each ignored check still fires without the annotations (no stale exception)', () => {
    const raw = kubeScore(renders.get('everything on')!, { bin, honourIgnores: false });
    const fired = new Set(raw.filter((f) => f.grade === 'CRITICAL').map((f) => f.check));
    expect([...fired].sort()).toEqual(Object.keys(IGNORED).sort());
  });

  it('every kube-score/ignore in a template has a comment above it saying why', () => {
    const dir = join(CHART, 'templates');
    let seen = 0;
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) =>
      /\.(yaml|tpl)$/.test(f),
    );
    for (const file of files) {
      const lines = readFileSync(join(dir, file), 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!line.includes('kube-score/ignore:')) return;
        seen++;
        expect(lines[i - 1]?.trim(), `${file}:${i + 1}`).toMatch(/^#/);
      });
    }
    // The three Deployments, and the helm test pods' shared template (templates/tests/_pod.tpl).
    expect(seen).toBe(4);
  });

  it('fails on a container without resource limits, naming the check', () => {
    const bad = [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata: { name: no-limits, namespace: default }',
      'spec:',
      '  replicas: 2',
      '  selector: { matchLabels: { app: no-limits } }',
      '  template:',
      '    metadata: { labels: { app: no-limits } }',
      '    spec:',
      '      containers:',
      '        - { name: app, image: "example.com/app:1.0.0" }',
      '',
    ].join('\n');
    expect(() => assertNoCritical(bad, 'a bad manifest', bin)).toThrow(
      /CRITICAL.*Deployment\/apps\/v1\/default\/no-limits: container-resources \(Container Resources\)/s,
    );
  });

  it('reports a kube-score that does not answer in JSON, and a chart that does not render', () => {
    expect(() => kubeScore('kind: Pod\n', { bin: '/bin/false' })).toThrow(/kube-score failed \(exit 1\)/);
    expect(() => renderChart(['--set', 'operator.replicas=0'], helm)).toThrow(
      /helm template failed: .*\/operator\/replicas/s,
    );
  });

  it('runs as CI runs it: helm lint --strict and both value sets, exit 0', () => {
    const out = execFileSync(process.execPath, [join(CHART, '..', '..', 'hack', 'ci', 'chart-lint.ts')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(out).toMatch(/kube-score \(defaults\): no CRITICAL finding/);
    expect(out).toMatch(/kube-score \(everything on\): no CRITICAL finding/);
  });
});
