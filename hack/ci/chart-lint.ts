/**
 * Static checks of the Helm chart: `helm lint --strict`, then kube-score (pinned, Go-built: it
 * stands in for kube-linter, whose Go module the proxy refuses) on `helm template` output with the
 * default values and with every optional part on. Fails on any CRITICAL finding; warnings are
 * printed. A check the chart deliberately does not follow carries a `kube-score/ignore`
 * annotation in its template, with the reason beside it.
 *   node hack/ci/chart-lint.ts      (CI's chart-lint job, `make chart-lint`)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HACK_DIR, kubeVersion } from '../cluster/assets.ts';
import { helmPath } from '../generate-manifests.ts';

export const CHART = join(HACK_DIR, '..', 'charts', 'epreuve');
export const NAMESPACE = 'epreuve-system';

/** The value sets the chart is scored with: `helm template` arguments. */
export const VALUE_SETS: Record<string, string[]> = {
  defaults: [],
  'everything on': [
    'gateway.enabled=true',
    'gateway.domain=sandbox.example.com',
    'api.ingress.enabled=true',
    'api.ingress.className=nginx',
    'api.ingress.tlsSecret=epreuve-tls',
    'api.trustedProxies[0]=10.244.0.0/16',
    'api.oidc.issuer=https://id.example.com',
    'api.oidc.jwksUrl=https://id.example.com/jwks',
    'api.apiKeysSecret=epreuve-api-keys',
    'monitoring.serviceMonitor.enabled=true',
    'monitoring.prometheusRule.enabled=true',
    'monitoring.dashboards.enabled=true',
    'samples.enabled=true',
    'imagePullSecrets[0].name=regcred',
    'operator.sandboxPlacement.nodeSelector.epreuve\\.dev/pool=sandboxes',
    'api.nodeSelector.kubernetes\\.io/os=linux',
    'otel.endpoint=http://otel-collector.observability:4318',
    'otel.headersSecret.name=otel-headers',
  ].flatMap((v) => ['--set', v]),
};

export type Grade = 'CRITICAL' | 'WARNING';
export type Finding = { object: string; check: string; name: string; grade: Grade; comments: string[] };

type KubeScoreCheck = {
  check: { id: string; name: string };
  grade: number;
  skipped: boolean;
  comments: Array<{ path: string; summary: string }> | null;
};
type KubeScoreObject = { object_name: string; checks: KubeScoreCheck[] | null };

/** kube-score's grades (scorecard.Grade): 1 critical, 5 warning, 7 almost OK, 10 OK. */
const GRADES: Record<number, Grade> = { 1: 'CRITICAL', 5: 'WARNING' };

/** The cached, pinned kube-score (hack/tools/kube-score). */
export function kubeScorePath(): string {
  return execFileSync(join(HACK_DIR, 'build-go-tool.sh'), ['kube-score'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .toString()
    .trim();
}

/** `helm template` of the chart with one value set; throws with helm's message on failure. */
export function renderChart(args: string[], helm = helmPath()): string {
  const res = spawnSync(
    helm,
    [
      'template',
      'epreuve',
      CHART,
      '-n',
      NAMESPACE,
      '--kube-version',
      kubeVersion().replace(/^v/, ''),
      ...args,
    ],
    { encoding: 'utf8' },
  );
  if (res.status !== 0) throw new Error(`helm template failed: ${res.stderr.trim()}`);
  return res.stdout;
}

/**
 * kube-score's findings (CRITICAL and WARNING) for a multi-document manifest.
 * honourIgnores=false scores as if no `kube-score/ignore` annotation were there.
 */
export function kubeScore(manifest: string, opts: { bin?: string; honourIgnores?: boolean } = {}): Finding[] {
  const args = [
    'score',
    '-o',
    'json',
    '--kubernetes-version',
    kubeVersion().replace(/^(v\d+\.\d+).*$/, '$1'),
  ];
  if (opts.honourIgnores === false) args.push('--disable-ignore-checks-annotations');
  // Exit 1 just means "found something"; anything but JSON on stdout is a real failure.
  const res = spawnSync(opts.bin ?? kubeScorePath(), [...args, '-'], { input: manifest, encoding: 'utf8' });
  let objects: KubeScoreObject[];
  try {
    objects = JSON.parse(res.stdout) as KubeScoreObject[];
  } catch {
    throw new Error(`kube-score failed (exit ${res.status}): ${res.stderr.trim() || res.stdout.trim()}`);
  }
  return objects.flatMap((o) =>
    (o.checks ?? [])
      .filter((c) => !c.skipped && GRADES[c.grade])
      .map((c) => ({
        object: o.object_name,
        check: c.check.id,
        name: c.check.name,
        grade: GRADES[c.grade]!,
        comments: (c.comments ?? []).map((m) => (m.path ? `${m.path}: ${m.summary}` : m.summary)),
      })),
  );
}

export function formatFindings(findings: Finding[]): string {
  return findings
    .map((f) => `[${f.grade}] ${f.object}: ${f.check} (${f.name}) — ${f.comments.join('; ')}`)
    .join('\n');
}

/** Throws, naming every failed check, when kube-score finds anything CRITICAL. */
export function assertNoCritical(manifest: string, label: string, bin?: string): Finding[] {
  const findings = kubeScore(manifest, bin ? { bin } : {});
  const critical = findings.filter((f) => f.grade === 'CRITICAL');
  if (critical.length > 0) {
    throw new Error(
      `kube-score: ${critical.length} CRITICAL finding(s) with ${label}:\n${formatFindings(critical)}\n` +
        'Fix them, or annotate the object with kube-score/ignore and say why (see docs/ci.md).',
    );
  }
  return findings;
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  const helm = helmPath();
  const bin = kubeScorePath();
  const lint = spawnSync(helm, ['lint', '--strict', CHART], { encoding: 'utf8' });
  process.stdout.write(lint.stdout);
  process.stderr.write(lint.stderr);
  if (lint.status !== 0) process.exit(1);
  let failed = false;
  for (const [label, args] of Object.entries(VALUE_SETS)) {
    try {
      const warnings = assertNoCritical(renderChart(args, helm), label, bin);
      console.log(`kube-score (${label}): no CRITICAL finding, ${warnings.length} warning(s)`);
      if (warnings.length) console.log(formatFindings(warnings));
    } catch (err) {
      console.error((err as Error).message);
      failed = true;
    }
  }
  process.exit(failed ? 1 : 0);
}
