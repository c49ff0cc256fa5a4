import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { HACK_DIR, kubeVersion } from '../../hack/cluster/assets.ts';
import { createTestNamespace, kubectl } from '../harness/kube.ts';
import { installThirdPartyCrds } from '../harness/third-party-crds.ts';

/** The Helm chart, checked by real tools: helm lint, helm template, and a server-side dry run. */
const GATEWAY_ON = 'gateway:\n  enabled: true\n  domain: sandbox.example.com\n';
const kubeconfig = inject('kubeconfig');
const CHART = join(import.meta.dirname, '..', '..', 'charts', 'epreuve');
let helm: string;
let ns: string;
const dir = mkdtempSync(join(tmpdir(), 'epreuve-values-'));

const MONITORING_ON = [
  'monitoring:',
  '  labels: { release: kube-prometheus-stack }',
  '  serviceMonitor: { enabled: true, interval: 15s }',
  '  prometheusRule: { enabled: true }',
  '  dashboards: { enabled: true, annotations: { grafana_folder: Épreuve } }',
  '',
].join('\n');

const values = (name: string, yaml: string) => {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, yaml);
  return path;
};
const template = (files: string[] = []) =>
  spawnSync(
    helm,
    [
      'template',
      'epreuve',
      CHART,
      '-n',
      ns,
      '--kube-version',
      kubeVersion(),
      ...files.flatMap((f) => ['-f', f]),
    ],
    { encoding: 'utf8' },
  );

beforeAll(async () => {
  helm = execFileSync(join(HACK_DIR, 'build-go-tool.sh'), ['helm'], { stdio: ['ignore', 'pipe', 'inherit'] })
    .toString()
    .trim();
  ns = await createTestNamespace(kubeconfig, 'epreuve-system');
  // ServiceMonitor and PrometheusRule are dry-run against the Prometheus operator's real schemas.
  await installThirdPartyCrds(kubeconfig, 'prometheus-operator');
}, 600_000);

describe('helm chart', () => {
  it('passes helm lint --strict', () => {
    const res = spawnSync(helm, ['lint', '--strict', CHART], { encoding: 'utf8' });
    expect(res.stdout + res.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(res.status).toBe(0);
  });

  it('claims only the tested Kubernetes minor (kubeVersion), and helm enforces it', () => {
    const minor = kubeVersion().split('.').slice(0, 2).join('.');
    expect(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')).toContain(
      `kubeVersion: ">=${minor.slice(1)}.0-0"`,
    );
    const older = spawnSync(helm, ['template', 'epreuve', CHART, '--kube-version', '1.35.9'], {
      encoding: 'utf8',
    });
    expect(older.stderr).toMatch(
      /chart requires kubeVersion: >=1\.36\.0-0 which is incompatible with Kubernetes v1\.35\.9/,
    );
    expect(older.status).not.toBe(0);
  });

  const good: Array<[string, string]> = [
    ['defaults', ''],
    ['HA', 'operator:\n  replicas: 3\napi:\n  replicas: 4\n'],
    [
      'ingress on, with TLS',
      'api:\n  ingress:\n    enabled: true\n    className: nginx\n    host: epreuve.example.com\n    tlsSecret: epreuve-tls\n',
    ],
    [
      'OIDC and API keys',
      'api:\n  oidc:\n    issuer: https://id.example.com\n    jwksUrl: https://id.example.com/jwks\n  apiKeysSecret: epreuve-api-keys\n',
    ],
    ['monitoring on', MONITORING_ON],
    ['the sandbox gateway on', GATEWAY_ON],
  ];
  it.each(good)(
    'renders with %s and the API server accepts it (server-side dry run)',
    async (_label, yaml) => {
      const rendered = template(yaml ? [values('good', yaml)] : []);
      expect(rendered.stderr).toBe('');
      const res = await kubectl(
        kubeconfig,
        ['apply', '--dry-run=server', '-n', ns, '-f', '-'],
        rendered.stdout,
      );
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/deployment.apps\/epreuve-operator created \(server dry run\)/);
    },
  );

  it('runs every container as Pod Security restricted wants, and grants no wildcard', () => {
    const docs = parseAllDocuments(template().stdout)
      .map((d) => d.toJS())
      .filter(Boolean);
    const pods = docs.filter((d) => d.kind === 'Deployment');
    expect(pods.map((d) => d.metadata.name).sort()).toEqual(['epreuve-api', 'epreuve-operator']);
    for (const d of pods) {
      expect(d.spec.template.spec.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      for (const c of d.spec.template.spec.containers) {
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        expect(c.resources.limits).toBeDefined();
      }
    }
    const rules = docs.filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role').flatMap((d) => d.rules);
    for (const r of rules)
      for (const v of [...r.verbs, ...r.resources, ...r.apiGroups]) expect(v).not.toBe('*');
    // The operator may bind one ClusterRole, by name, and may not escalate.
    const bind = rules.filter((r) => r.verbs.includes('bind'));
    expect(bind).toEqual([
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        verbs: ['bind'],
        resourceNames: ['epreuve-sandbox-reader'],
      },
    ]);
    expect(rules.some((r) => r.verbs.includes('escalate'))).toBe(false);
  });

  it('with monitoring on, renders ServiceMonitors, the PrometheusRule and dashboards for the Grafana sidecar', async () => {
    const rendered = template([values('monitoring', MONITORING_ON)]);
    const docs = parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS())
      .filter(Boolean);
    const monitors = docs.filter((d) => d.kind === 'ServiceMonitor');
    expect(
      monitors.map((d) => [d.metadata.name, d.spec.endpoints[0].port, d.spec.endpoints[0].interval]),
    ).toEqual([
      ['epreuve-operator', 'metrics', '15s'],
      ['epreuve-api', 'http', '15s'],
    ]);
    for (const d of monitors) expect(d.metadata.labels.release).toBe('kube-prometheus-stack');
    const rule = docs.find((d) => d.kind === 'PrometheusRule');
    expect(
      rule.spec.groups.flatMap((g: { rules: Array<{ alert: string }> }) => g.rules.map((r) => r.alert)),
    ).toHaveLength(4);
    const dashboards = docs.filter(
      (d) => d.kind === 'ConfigMap' && d.metadata.labels.grafana_dashboard === '1',
    );
    expect(dashboards).toHaveLength(4);
    for (const d of dashboards) {
      expect(d.metadata.annotations).toEqual({ grafana_folder: 'Épreuve' });
      const entries = Object.entries(d.data as Record<string, string>);
      expect(entries).toHaveLength(1);
      expect(entries[0]![0]).toMatch(/\.json$/);
      expect(JSON.parse(entries[0]![1]).schemaVersion).toBeGreaterThanOrEqual(39);
    }
    // Off by default: none of it without the toggles (the CRDs may not exist in the cluster).
    expect(template().stdout).not.toMatch(/kind: (ServiceMonitor|PrometheusRule)|grafana_dashboard/);
    const res = await kubectl(
      kubeconfig,
      ['apply', '--dry-run=server', '-n', ns, '-f', '-'],
      rendered.stdout,
    );
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(
      /servicemonitor.monitoring.coreos.com\/epreuve-operator created \(server dry run\)/,
    );
    expect(res.stdout).toMatch(/prometheusrule.monitoring.coreos.com\/epreuve created \(server dry run\)/);
  });

  it('with the gateway on, makes a self-signed wildcard certificate for its domain and tells the API about it', () => {
    const docs = parseAllDocuments(template([values('gateway', GATEWAY_ON)]).stdout)
      .map((d) => d.toJS())
      .filter(Boolean);
    const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name === 'epreuve-gateway-tls');
    const cert = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    expect(cert.subjectAltName).toBe('DNS:*.sandbox.example.com');
    const api = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'epreuve-api');
    expect(api.spec.template.spec.containers[0].env).toEqual(
      expect.arrayContaining([
        { name: 'EPREUVE_GATEWAY_DOMAIN', value: 'sandbox.example.com' },
        { name: 'EPREUVE_GATEWAY_PUBLIC_PORT', value: '443' },
      ]),
    );
    expect(api.spec.template.spec.containers[0].env.map((e: { name: string }) => e.name)).not.toContain(
      'EPREUVE_GATEWAY_ADDRESS',
    );
    // The gateway reads Assessments and nothing else.
    const role = docs.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'epreuve-gateway');
    expect(role.rules).toEqual([
      { apiGroups: ['epreuve.dev'], resources: ['assessments'], verbs: ['get', 'list', 'watch'] },
    ]);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['zero operator replicas', 'operator:\n  replicas: 0\n', /\/operator\/replicas.*minimum: got 0, want 1/],
    ['an unknown pull policy', 'image:\n  pullPolicy: Sometimes\n', /\/image\/pullPolicy/],
    ['a public URL without a scheme', 'api:\n  publicUrl: epreuve.example.com\n', /\/api\/publicUrl/],
    [
      'an OIDC issuer without a JWKS URL',
      'api:\n  oidc:\n    issuer: https://id.example.com\n',
      /\/api\/oidc\/jwksUrl/,
    ],
    [
      'a negative CPU limit',
      'operator:\n  resources:\n    limits:\n      cpu: "-1"\n',
      /\/operator\/resources\/limits\/cpu/,
    ],
    ['a misspelt key', 'operater:\n  replicas: 2\n', /additional properties 'operater' not allowed/],
    [
      'a scrape interval that is not a Prometheus duration',
      'monitoring:\n  serviceMonitor:\n    interval: 30 seconds\n',
      /\/monitoring\/serviceMonitor\/interval.*does not match pattern/,
    ],
    [
      'an unquoted dashboard label value',
      'monitoring:\n  dashboards:\n    labelValue: 1\n',
      /\/monitoring\/dashboards\/labelValue.*got number, want string/,
    ],
    [
      'a selector label key with a space',
      'monitoring:\n  labels:\n    release name: kps\n',
      /\/monitoring\/labels.*additional properties 'release name' not allowed/,
    ],
    [
      'the gateway on without a domain',
      'gateway:\n  enabled: true\n',
      /\/gateway\/domain.*minLength: got 0, want 1/,
    ],
    [
      'a gateway domain that is a URL',
      'gateway:\n  enabled: true\n  domain: https://sandbox.example.com\n',
      /\/gateway\/domain.*does not match pattern/,
    ],
    [
      'a gateway address that is a name',
      'gateway:\n  address: gateway.example.com\n',
      /\/gateway\/address.*does not match pattern/,
    ],
    [
      'a misspelt monitoring toggle',
      'monitoring:\n  serviceMonitors:\n    enabled: true\n',
      /additional properties 'serviceMonitors' not allowed/,
    ],
  ];
  it.each(bad)('values.schema.json rejects %s with a clear message', (_label, yaml, message) => {
    const res = template([values('bad', yaml)]);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(message);
  });
});
