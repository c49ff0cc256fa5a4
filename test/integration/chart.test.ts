import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { HACK_DIR, kubeVersion } from '../../hack/cluster/assets.ts';
import { freePort } from '../../hack/cluster/control-plane.ts';
import { loadConfig } from '../../operator/src/config.ts';
import { addressRefusal } from '../../operator/src/webhook/address-policy.ts';
import { controlPlane, loadWebhookConfig } from '../../operator/src/webhook/config.ts';
import { startApi } from '../harness/api.ts';
import { createTestNamespace, eventually, kubectl } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';
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
const template = (files: string[] = [], extra: string[] = []) =>
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
      ...extra,
    ],
    { encoding: 'utf8' },
  );
// Rendered Kubernetes objects, checked field by field.
type Obj = any;
const render = (yaml = '', extra: string[] = []): Obj[] => {
  const res = template(yaml ? [values('render', yaml)] : [], extra);
  if (res.status !== 0) throw new Error(res.stderr);
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJS())
    .filter(Boolean);
};
const deployment = (docs: Obj[], name: string) =>
  docs.find((d) => d.kind === 'Deployment' && d.metadata.name === name);
const envOf = (d: Obj): Array<{ name: string; value?: string; valueFrom?: object }> =>
  d.spec.template.spec.containers[0].env;

/** Every value the conventions added, set at once (the helm test pods, placement, OTel…). */
const CONVENTIONS = [
  'imagePullSecrets: [{ name: regcred }]',
  'otel:',
  '  endpoint: http://otel-collector.observability:4318',
  '  headersSecret: { name: otel-headers, key: otlp-headers }',
  '  resourceAttributes: { deployment.environment.name: prod, service.namespace: epreuve }',
  ...['operator', 'api', 'gateway'].flatMap((c) => [
    `${c}:`,
    ...(c === 'gateway' ? ['  enabled: true', '  domain: sandbox.example.com'] : []),
    `  nodeSelector: { epreuve.dev/pool: platform-${c} }`,
    '  tolerations: [{ key: epreuve.dev/platform, operator: Exists, effect: NoSchedule }]',
    '  affinity:',
    '    podAntiAffinity:',
    '      preferredDuringSchedulingIgnoredDuringExecution:',
    '        - weight: 100',
    `          podAffinityTerm: { topologyKey: kubernetes.io/hostname, labelSelector: { matchLabels: { app.kubernetes.io/name: epreuve-${c} } } }`,
    `  extraEnv: [{ name: EXTRA_${c.toUpperCase()}, value: "on" }, { name: FROM_SECRET, valueFrom: { secretKeyRef: { name: s, key: k } } }]`,
    ...(c === 'operator'
      ? [
          '  sandboxPlacement:',
          '    nodeSelector: { epreuve.dev/pool: sandboxes }',
          '    tolerations: [{ key: epreuve.dev/sandboxes, operator: Exists, effect: NoSchedule }]',
          '    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: epreuve.dev/pool, operator: In, values: [sandboxes] }] }] } } }',
        ]
      : []),
  ]),
  '',
].join('\n');

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
      'api:\n  trustedProxies: [10.244.0.0/16]\n  ingress:\n    enabled: true\n    className: nginx\n    host: epreuve.example.com\n    tlsSecret: epreuve-tls\n',
    ],
    [
      'OIDC and API keys',
      'api:\n  oidc:\n    issuer: https://id.example.com\n    jwksUrl: https://id.example.com/jwks\n  apiKeysSecret: epreuve-api-keys\n',
    ],
    ['monitoring on', MONITORING_ON],
    ['the sandbox gateway on', GATEWAY_ON],
    ['every convention value set (placement, pull secrets, OTel, extra env, helm test pods)', CONVENTIONS],
    [
      'the operator egress narrowed, with private webhook targets',
      'networkPolicy:\n  operatorEgress:\n    apiServer: { cidrs: [10.244.0.1/32], ports: [36443] }\n    webhookPrivateTargets: [{ cidr: 10.20.0.0/16, ports: [8443] }, { cidr: "fd00:20::/64" }]\nwebhooks:\n  refusedCidrs: [10.1.0.0/16]\n',
    ],
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
      ['epreuve-api', 'metrics', '15s'],
    ]);
    for (const d of monitors) expect(d.metadata.labels.release).toBe('kube-prometheus-stack');
    const rule = docs.find((d) => d.kind === 'PrometheusRule');
    expect(
      rule.spec.groups
        .flatMap((g: { rules: Array<{ alert: string }> }) => g.rules.map((r) => r.alert))
        .sort(),
    ).toEqual([
      'EpreuveApiHighErrorRatio',
      'EpreuveAssessmentStuckProvisioning',
      'EpreuveGatewayBackendErrors',
      'EpreuveGatewayDown',
      'EpreuveOperatorNoLeader',
      'EpreuveReconcileErrors',
      'EpreuveTeamNearBudget',
      'EpreuveWarmPoolEmpty',
    ]);
    // The gateway's ServiceMonitor comes with the gateway.
    expect(
      render(`${MONITORING_ON}${GATEWAY_ON}`)
        .filter((d) => d.kind === 'ServiceMonitor')
        .map((d) => [d.metadata.name, d.spec.endpoints[0].port]),
    ).toEqual([
      ['epreuve-operator', 'metrics'],
      ['epreuve-api', 'metrics'],
      ['epreuve-gateway', 'metrics'],
    ]);
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

  it('serves the API metrics on their own port and Service, reachable only from networkPolicy.metricsFrom', () => {
    const docs = render(GATEWAY_ON);
    const api = deployment(docs, 'epreuve-api').spec.template.spec.containers[0];
    expect(api.ports).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
    ]);
    expect(api.env).toEqual(
      expect.arrayContaining([
        { name: 'EPREUVE_API_PORT', value: '8080' },
        { name: 'EPREUVE_METRICS_PORT', value: '9090' },
      ]),
    );
    const service = (name: string) => docs.find((d) => d.kind === 'Service' && d.metadata.name === name);
    // The public Service (NodePort or LoadBalancer where set) carries the public port only.
    expect(service('epreuve-api').spec.ports.map((p: { targetPort: string }) => p.targetPort)).toEqual([
      'http',
    ]);
    expect(service('epreuve-api-metrics').spec).toEqual({
      selector: { 'app.kubernetes.io/name': 'epreuve-api' },
      ports: [{ name: 'metrics', port: 9090, targetPort: 'metrics', protocol: 'TCP' }],
    });
    const policy = (all: Obj[], name: string) =>
      all.find((d) => d.kind === 'NetworkPolicy' && d.metadata.name === name).spec.ingress;
    // By default every namespace of the cluster may scrape; the public port stays open to all.
    expect(policy(docs, 'epreuve-platform')).toEqual([
      { ports: [{ port: 8080, protocol: 'TCP' }] },
      { from: [{ namespaceSelector: {} }], ports: [{ port: 9090, protocol: 'TCP' }] },
    ]);
    const monitoring = [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ];
    const narrowed = render(
      `${GATEWAY_ON}networkPolicy:\n  metricsFrom: [{ namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: monitoring } } }]\n`,
    );
    expect(policy(narrowed, 'epreuve-platform')[1]).toEqual({
      from: monitoring,
      ports: [{ port: 9090, protocol: 'TCP' }],
    });
    expect(policy(narrowed, 'epreuve-gateway')[1]).toEqual({
      from: monitoring,
      ports: [{ port: 9090, protocol: 'TCP' }],
    });
    // An empty list would admit every source (an empty `from`): the schema refuses it.
    const empty = template([values('metrics-from-empty', 'networkPolicy:\n  metricsFrom: []\n')]);
    expect(empty.status).not.toBe(0);
    expect(empty.stderr).toMatch(/at '\/networkPolicy\/metricsFrom': minItems: got 0, want 1/);
  });

  it('gives the operator an egress policy: DNS, the API server, and webhooks to public IPv4 only', () => {
    const egress = (all: Obj[]) =>
      all.find((d) => d.kind === 'NetworkPolicy' && d.metadata.name === 'epreuve-operator-egress');
    const docs = render();
    const policy = egress(docs);
    expect(policy.spec.podSelector).toEqual({
      matchLabels: { 'app.kubernetes.io/name': 'epreuve-operator' },
    });
    expect(policy.spec.policyTypes).toEqual(['Egress']);
    const [dns, apiServer, pools, webhooks, ...more] = policy.spec.egress;
    expect(more).toEqual([]);
    // A warm pool's claim: the operator sets credentials in the managed namespaces' sandboxes.
    expect(pools).toEqual({
      to: [{ namespaceSelector: { matchLabels: { 'app.kubernetes.io/managed-by': 'epreuve' } } }],
      ports: [
        { port: 5432, protocol: 'TCP' },
        { port: 27017, protocol: 'TCP' },
        { port: 8081, protocol: 'TCP' },
      ],
    });
    expect(dns).toEqual({
      to: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
          podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
        },
      ],
      ports: [
        { port: 53, protocol: 'UDP' },
        { port: 53, protocol: 'TCP' },
      ],
    });
    // Unnarrowed: any address, on the API server's usual ports only.
    expect(apiServer).toEqual({
      ports: [
        { port: 443, protocol: 'TCP' },
        { port: 6443, protocol: 'TCP' },
      ],
    });
    expect(webhooks.ports).toEqual([
      { port: 443, protocol: 'TCP' },
      { port: 80, protocol: 'TCP' },
    ]);
    expect(webhooks.to).toHaveLength(1);
    expect(webhooks.to[0].ipBlock.cidr).toBe('0.0.0.0/0');
    // Private, loopback, link-local (cloud metadata), CGNAT, multicast and reserved: excepted.
    expect(webhooks.to[0].ipBlock.except).toEqual(
      expect.arrayContaining([
        '10.0.0.0/8',
        '172.16.0.0/12',
        '192.168.0.0/16',
        '127.0.0.0/8',
        '169.254.0.0/16',
        '100.64.0.0/10',
        '0.0.0.0/8',
        '224.0.0.0/4',
        '240.0.0.0/4',
      ]),
    );
    // Nothing refused beyond the defaults the operator knows itself.
    expect(envOf(deployment(docs, 'epreuve-operator')).map((e) => e.name)).not.toContain(
      'EPREUVE_WEBHOOK_REFUSED_CIDRS',
    );

    const set = render(
      [
        'networkPolicy:',
        '  operatorEgress:',
        '    dns: [{ ipBlock: { cidr: 169.254.20.10/32 } }]',
        '    apiServer: { cidrs: [10.244.0.1/32, 172.20.0.0/28], ports: [36443] }',
        '    webhookPrivateTargets: [{ cidr: 10.20.0.0/16, ports: [8443] }, { cidr: 192.168.7.0/24 }]',
        '    extra: [{ to: [{ namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: observability } } }], ports: [{ port: 4318 }] }]',
        'webhooks:',
        '  refusedCidrs: [10.1.0.0/16]',
        '',
      ].join('\n'),
    );
    const rules = egress(set).spec.egress;
    expect(rules[0].to).toEqual([{ ipBlock: { cidr: '169.254.20.10/32' } }]);
    expect(rules[1]).toEqual({
      ports: [{ port: 36443, protocol: 'TCP' }],
      to: [{ ipBlock: { cidr: '10.244.0.1/32' } }, { ipBlock: { cidr: '172.20.0.0/28' } }],
    });
    expect(rules[3].to[0].ipBlock.cidr).toBe('0.0.0.0/0');
    expect(rules.slice(4)).toEqual([
      { to: [{ ipBlock: { cidr: '10.20.0.0/16' } }], ports: [{ port: 8443, protocol: 'TCP' }] },
      {
        to: [{ ipBlock: { cidr: '192.168.7.0/24' } }],
        ports: [
          { port: 443, protocol: 'TCP' },
          { port: 80, protocol: 'TCP' },
        ],
      },
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }],
        ports: [{ port: 4318 }],
      },
    ]);
    // What the policy opens for the API server, and the listed CIDRs, the operator refuses as targets.
    const env = envOf(deployment(set, 'epreuve-operator'));
    const refused = env.find((e) => e.name === 'EPREUVE_WEBHOOK_REFUSED_CIDRS')?.value;
    expect(refused).toBe('10.244.0.1/32,172.20.0.0/28,10.1.0.0/16');
    expect(
      addressRefusal('10.244.0.1', {
        allowPrivateTargets: true,
        refused: controlPlane(loadWebhookConfig({ EPREUVE_WEBHOOK_REFUSED_CIDRS: refused })),
      }),
    ).toBe(
      '10.244.0.1 is in 10.244.0.1/32, refused by the operator (EPREUVE_WEBHOOK_REFUSED_CIDRS); webhooks may never reach it, even with allowPrivateTargets',
    );

    // Webhooks off: no way out for them; the policy off, or all policies off: none at all.
    const noHooks = egress(render('webhooks:\n  enabled: false\n')).spec.egress;
    expect(noHooks).toHaveLength(3);
    expect(JSON.stringify(noHooks)).not.toContain('0.0.0.0/0');
    expect(egress(render('networkPolicy:\n  operatorEgress:\n    enabled: false\n'))).toBeUndefined();
    expect(egress(render('networkPolicy:\n  enabled: false\n'))).toBeUndefined();
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
    // The gateway reads Assessments and patches their status, nothing else (a ValidatingAdmissionPolicy
    // confines that patch to status.signals: docs/integrity-signals.md).
    const role = docs.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'epreuve-gateway');
    expect(role.rules).toEqual([
      { apiGroups: ['epreuve.dev'], resources: ['assessments'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['epreuve.dev'], resources: ['assessments/status'], verbs: ['patch'] },
    ]);
    expect(
      docs.find(
        (d) => d.kind === 'ValidatingAdmissionPolicy' && d.metadata.name === 'epreuve-gateway-signals-only',
      ),
    ).toBeDefined();
  });

  it('labels every object with the recommended app.kubernetes.io set, and keeps every selector as it was', () => {
    const docs = render(`${CONVENTIONS}${MONITORING_ON}samples: { enabled: true }\n`);
    expect(docs.length).toBeGreaterThan(30);
    const components = new Set<string>();
    for (const d of docs) {
      const where = `${d.kind}/${d.metadata.name}`;
      expect(d.metadata.labels, where).toMatchObject({
        'app.kubernetes.io/name': expect.stringMatching(/^epreuve(-[a-z]+)?$/),
        'app.kubernetes.io/instance': 'epreuve',
        'app.kubernetes.io/version': '0.1.0',
        'app.kubernetes.io/component': expect.stringMatching(/^[a-z]+$/),
        'app.kubernetes.io/part-of': 'epreuve',
        'app.kubernetes.io/managed-by': 'Helm',
        'helm.sh/chart': 'epreuve-0.1.0',
      });
      components.add(d.metadata.labels['app.kubernetes.io/component']);
      // Pod templates carry the same set, so `kubectl get pods -l app.kubernetes.io/instance=…` works.
      if (d.spec?.template)
        expect(d.spec.template.metadata.labels, where).toMatchObject({
          'app.kubernetes.io/instance': 'epreuve',
          'app.kubernetes.io/component': d.metadata.labels['app.kubernetes.io/component'],
        });
    }
    expect([...components].sort()).toEqual([
      'api',
      'gateway',
      'monitoring',
      'operator',
      'platform',
      'samples',
      'test',
    ]);
    // Selectors are immutable on a Deployment: the one label they always had, nothing more, so a
    // release installed before these labels upgrades in place.
    const selectors = Object.fromEntries(
      docs
        .filter((d) => ['Deployment', 'Service', 'PodDisruptionBudget'].includes(d.kind))
        .map((d) => [`${d.kind}/${d.metadata.name}`, d.spec.selector.matchLabels ?? d.spec.selector]),
    );
    for (const [where, selector] of Object.entries(selectors)) {
      expect(Object.keys(selector as object), where).toEqual(['app.kubernetes.io/name']);
    }
    expect(selectors['Deployment/epreuve-api']).toEqual({ 'app.kubernetes.io/name': 'epreuve-api' });
    // The helm test pods are selected by nothing: no Service sends them traffic.
    const testPods = docs.filter((d) => d.kind === 'Pod');
    for (const pod of testPods)
      for (const sel of Object.values(selectors) as Array<Record<string, string>>)
        expect(pod.metadata.labels['app.kubernetes.io/name']).not.toBe(sel['app.kubernetes.io/name']);
  });

  it('renders pull secrets, placement and extra env where set, and none of it by default', () => {
    const docs = render(CONVENTIONS);
    for (const c of ['operator', 'api', 'gateway']) {
      const spec = deployment(docs, `epreuve-${c}`).spec.template.spec;
      expect(spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
      expect(spec.nodeSelector).toEqual({ 'epreuve.dev/pool': `platform-${c}` });
      expect(spec.tolerations).toEqual([
        { key: 'epreuve.dev/platform', operator: 'Exists', effect: 'NoSchedule' },
      ]);
      expect(
        spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm
          .labelSelector,
      ).toEqual({ matchLabels: { 'app.kubernetes.io/name': `epreuve-${c}` } });
      // After the chart's own variables, in the order given.
      expect(envOf(deployment(docs, `epreuve-${c}`)).slice(-2)).toEqual([
        { name: `EXTRA_${c.toUpperCase()}`, value: 'on' },
        { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
      ]);
    }
    for (const pod of docs.filter((d) => d.kind === 'Pod'))
      expect(pod.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    const defaults = render(GATEWAY_ON);
    for (const c of ['operator', 'api', 'gateway']) {
      const d = deployment(defaults, `epreuve-${c}`);
      for (const k of ['imagePullSecrets', 'nodeSelector', 'tolerations', 'affinity'])
        expect(Object.keys(d.spec.template.spec), `${c} ${k}`).not.toContain(k);
      expect(
        envOf(d)
          .map((e) => e.name)
          .filter((n) => /^(OTEL_|EXTRA_|EPREUVE_SANDBOX_PLACEMENT)/.test(n)),
      ).toEqual([]);
    }
  });

  it("bounds the operator's V8 heap from its memory limit, keeping the image's flag, and sets no bound without a limit in Mi or Gi", () => {
    const nodeOptions = (yaml: string) =>
      envOf(deployment(render(yaml), 'epreuve-operator')).find((e) => e.name === 'NODE_OPTIONS')?.value;
    expect(nodeOptions('')).toBe(
      '--disable-warning=ExperimentalWarning --max-old-space-size=128 --max-semi-space-size=4',
    );
    expect(nodeOptions('operator:\n  resources:\n    limits: { memory: 1Gi }\n')).toBe(
      '--disable-warning=ExperimentalWarning --max-old-space-size=512 --max-semi-space-size=16',
    );
    for (const limits of ['{ memory: 1000M }', '{ memory: null }'])
      expect(nodeOptions(`operator:\n  resources:\n    limits: ${limits}\n`)).toBe(
        '--disable-warning=ExperimentalWarning',
      );
  });

  it('hands the sandbox placement to the operator, which reads it back as it was given', () => {
    const env = envOf(deployment(render(CONVENTIONS), 'epreuve-operator'));
    const value = env.find((e) => e.name === 'EPREUVE_SANDBOX_PLACEMENT')?.value;
    const expected = {
      nodeSelector: { 'epreuve.dev/pool': 'sandboxes' },
      tolerations: [{ key: 'epreuve.dev/sandboxes', operator: 'Exists', effect: 'NoSchedule' }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'epreuve.dev/pool', operator: 'In', values: ['sandboxes'] }] },
            ],
          },
        },
      },
    };
    expect(JSON.parse(value!)).toEqual(expected);
    // The operator's own parser, on the very string the chart renders.
    expect(loadConfig({ EPREUVE_SANDBOX_PLACEMENT: value }).EPREUVE_SANDBOX_PLACEMENT).toEqual(expected);
    // Only the fields given: a node selector alone.
    const one = envOf(
      deployment(
        render('operator:\n  sandboxPlacement:\n    nodeSelector: { pool: sb }\n'),
        'epreuve-operator',
      ),
    );
    expect(one.find((e) => e.name === 'EPREUVE_SANDBOX_PLACEMENT')?.value).toBe(
      '{"nodeSelector":{"pool":"sb"}}',
    );
  });

  it('gives the operator, the API and the gateway the OTLP endpoint, headers from the Secret and resource attributes', () => {
    const docs = render(CONVENTIONS);
    for (const c of ['operator', 'api', 'gateway'])
      expect(envOf(deployment(docs, `epreuve-${c}`)), c).toEqual(
        expect.arrayContaining([
          { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://otel-collector.observability:4318' },
          {
            name: 'OTEL_EXPORTER_OTLP_HEADERS',
            valueFrom: { secretKeyRef: { name: 'otel-headers', key: 'otlp-headers' } },
          },
          {
            name: 'OTEL_RESOURCE_ATTRIBUTES',
            value: 'deployment.environment.name=prod,service.namespace=epreuve',
          },
        ]),
      );
  });

  it('renders the helm test pods as hooks: the API always, the gateway when it is on; --skip-tests leaves them out', () => {
    const pods = (docs: Obj[]) => docs.filter((d) => d.kind === 'Pod');
    const on = pods(render(GATEWAY_ON));
    expect(on.map((p) => p.metadata.name).sort()).toEqual(['epreuve-test-api', 'epreuve-test-gateway']);
    for (const p of on) {
      expect(p.metadata.annotations).toMatchObject({
        'helm.sh/hook': 'test',
        'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
      });
      expect(p.spec.restartPolicy).toBe('Never');
      expect(p.spec.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(p.spec.containers[0].securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
    }
    const byName = Object.fromEntries(on.map((p) => [p.metadata.name, p.spec.containers[0]]));
    expect(byName['epreuve-test-api'].env).toEqual([
      { name: 'API_URL', value: `http://epreuve-api.${ns}.svc:80` },
    ]);
    expect(byName['epreuve-test-gateway'].env).toEqual(
      expect.arrayContaining([
        { name: 'GATEWAY_HOST', value: `epreuve-gateway.${ns}.svc` },
        { name: 'GATEWAY_DOMAIN', value: 'sandbox.example.com' },
      ]),
    );
    expect(pods(render()).map((p) => p.metadata.name)).toEqual(['epreuve-test-api']);
    expect(pods(render(GATEWAY_ON, ['--skip-tests']))).toEqual([]);
  });

  it('takes the CRD upgrade the README documents: crds/ applied server-side over what another manager created', async () => {
    // The test cluster's CRDs were installed by another field manager, as Helm's install leaves
    // them; --force-conflicts lets this apply take over the fields that change.
    const res = await kubectl(kubeconfig, [
      'apply',
      '--server-side',
      '--force-conflicts',
      '--dry-run=server',
      '-f',
      join(CHART, 'crds'),
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    for (const crd of ['assessments', 'assessmenttemplates', 'submissions'])
      expect(res.stdout).toContain(
        `customresourcedefinition.apiextensions.k8s.io/${crd}.epreuve.dev serverside-applied (server dry run)`,
      );
  });

  it('takes the README’s other CRD upgrade: Helm 4’s `helm show crds` piped to kubectl, one document per CRD', async () => {
    const shown = spawnSync(helm, ['show', 'crds', CHART], { encoding: 'utf8' });
    expect(shown.status, shown.stderr).toBe(0);
    // Helm 3.22 joined the files without `---`: kubectl then saw a single document.
    expect(parseAllDocuments(shown.stdout).filter((d) => d.contents !== null)).toHaveLength(3);
    const res = await kubectl(
      kubeconfig,
      ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'],
      shown.stdout,
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    for (const crd of ['assessments', 'assessmenttemplates', 'submissions'])
      expect(res.stdout).toContain(
        `customresourcedefinition.apiextensions.k8s.io/${crd}.epreuve.dev serverside-applied (server dry run)`,
      );
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
      'an unknown key under the sandbox placement',
      'operator:\n  sandboxPlacement:\n    nodeselector: { pool: sb }\n',
      /\/operator\/sandboxPlacement.*additional properties 'nodeselector' not allowed/,
    ],
    [
      'a toleration with an effect Kubernetes does not have',
      'api:\n  tolerations: [{ key: k, operator: Exists, effect: Never }]\n',
      /\/api\/tolerations\/0\/effect/,
    ],
    [
      'an affinity that is not one of the three kinds',
      'gateway:\n  affinity: { nodeAfinity: {} }\n',
      /\/gateway\/affinity.*additional properties 'nodeAfinity' not allowed/,
    ],
    [
      'an extra variable with both a value and valueFrom',
      'api:\n  extraEnv: [{ name: A, value: b, valueFrom: { fieldRef: { fieldPath: metadata.name } } }]\n',
      /\/api\/extraEnv\/0/,
    ],
    [
      'an extra variable without a name',
      'operator:\n  extraEnv: [{ value: b }]\n',
      /\/operator\/extraEnv\/0.*missing property 'name'/,
    ],
    [
      'a pull secret given as a bare string',
      'imagePullSecrets: [regcred]\n',
      /\/imagePullSecrets\/0.*got string, want object/,
    ],
    [
      'a misspelt OTel key',
      'otel:\n  endpoit: http://c:4318\n',
      /\/otel.*additional properties 'endpoit' not allowed/,
    ],
    [
      'an OTLP endpoint without a scheme',
      'otel:\n  endpoint: collector:4318\n',
      /\/otel\/endpoint.*does not match pattern/,
    ],
    [
      'a resource attribute value with a comma',
      'otel:\n  resourceAttributes: { team: "a,b" }\n',
      /\/otel\/resourceAttributes\/team.*does not match pattern/,
    ],
    [
      'a misspelt operator egress key',
      'networkPolicy:\n  operatorEgress:\n    apiserver: { cidrs: [10.0.0.1/32] }\n',
      /\/networkPolicy\/operatorEgress.*additional properties 'apiserver' not allowed/,
    ],
    [
      'a private webhook target without a prefix length',
      'networkPolicy:\n  operatorEgress:\n    webhookPrivateTargets: [{ cidr: 10.20.0.0 }]\n',
      /\/networkPolicy\/operatorEgress\/webhookPrivateTargets\/0\/cidr.*does not match pattern/,
    ],
    [
      'a private webhook target without a CIDR',
      'networkPolicy:\n  operatorEgress:\n    webhookPrivateTargets: [{ ports: [8443] }]\n',
      /\/networkPolicy\/operatorEgress\/webhookPrivateTargets\/0.*missing property 'cidr'/,
    ],
    [
      'a webhook port out of range',
      'networkPolicy:\n  operatorEgress:\n    webhookPorts: [0]\n',
      /\/networkPolicy\/operatorEgress\/webhookPorts\/0.*minimum/,
    ],
    [
      'no DNS peer (an empty `to` would admit every destination)',
      'networkPolicy:\n  operatorEgress:\n    dns: []\n',
      /\/networkPolicy\/operatorEgress\/dns.*minItems: got 0, want 1/,
    ],
    [
      'a refused webhook CIDR that is a name',
      'webhooks:\n  refusedCidrs: [kubernetes.default]\n',
      /\/webhooks\/refusedCidrs\/0.*does not match pattern/,
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

  it('refuses the ingress without trustedProxies: every client would share one address for the failure throttle', () => {
    const res = template([values('bad', 'api:\n  ingress:\n    enabled: true\n')]);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(
      /api\.ingress\.enabled is true but api\.trustedProxies is empty: behind the ingress every client would share the controller's address/,
    );
  });
});

/**
 * The helm test pods' scripts, as the chart renders them (command, script, environment), run with
 * this machine's Node against a real API and a real gateway process serving the chart's own
 * self-signed certificate — only the Service addresses are swapped for loopback ones.
 */
describe('helm test scripts against a real API and a real gateway', () => {
  const issuer = new TestIssuer();
  let api: Awaited<ReturnType<typeof startApi>>;
  let apiUrl: string;
  let gateway: ChildProcess;
  let gatewayLog = '';
  const gatewayPort = { sandboxes: 0, metrics: 0 };
  let pods: Record<string, Obj>;

  const runPod = async (name: string, env: Record<string, string>) => {
    const c = pods[name].spec.containers[0];
    expect(c.command).toEqual(['node', '--input-type=module', '-e']);
    const podEnv = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    try {
      const { stdout, stderr } = await promisify(execFile)(
        process.execPath,
        [...c.command.slice(1), ...c.args],
        {
          env: { PATH: process.env.PATH, ...podEnv, ...env },
          timeout: 60_000,
        },
      );
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  beforeAll(async () => {
    const docs = render(GATEWAY_ON);
    pods = Object.fromEntries(docs.filter((d) => d.kind === 'Pod').map((p) => [p.metadata.name, p]));
    await issuer.start();
    api = await startApi(kubeconfig, {
      issuer,
      apiKey: 'epk_chart-helm-test-0123456789',
      apiKeyTeams: ['chart-test'],
    });
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    apiUrl = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;

    const tls = docs.find((d) => d.kind === 'Secret' && d.metadata.name === 'epreuve-gateway-tls');
    const certDir = mkdtempSync(join(tmpdir(), 'epreuve-helm-test-'));
    for (const f of ['tls.crt', 'tls.key'])
      writeFileSync(join(certDir, f), Buffer.from(tls.data[f], 'base64'));
    gatewayPort.sandboxes = await freePort();
    gatewayPort.metrics = await freePort();
    gateway = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'gateway', 'src', 'main.ts')], {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfig,
        EPREUVE_GATEWAY_HOST: '127.0.0.1',
        EPREUVE_GATEWAY_PORT: String(gatewayPort.sandboxes),
        EPREUVE_METRICS_PORT: String(gatewayPort.metrics),
        EPREUVE_GATEWAY_DOMAIN: 'sandbox.example.com',
        EPREUVE_GATEWAY_TLS_CERT_FILE: join(certDir, 'tls.crt'),
        EPREUVE_GATEWAY_TLS_KEY_FILE: join(certDir, 'tls.key'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway.stdout!.on('data', (b: Buffer) => (gatewayLog += b.toString()));
    gateway.stderr!.on('data', (b: Buffer) => (gatewayLog += b.toString()));
    await eventually(async () => expect(gatewayLog).toContain('sandbox gateway listening'), 30_000);
  }, 120_000);

  afterAll(async () => {
    gateway?.kill('SIGTERM');
    await api?.stop();
    await issuer.stop();
  });

  it('the API test passes against a real API', async () => {
    const res = await runPod('epreuve-test-api', { API_URL: apiUrl });
    expect(res.stderr).toBe('');
    expect(res.stdout).toContain(`${apiUrl}/healthz: 200`);
    expect(res.stdout).toContain(`${apiUrl}/readyz: 200`);
    expect(res.code).toBe(0);
  });

  it('the API test fails, naming the URL and the cause, when nothing answers', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const res = await runPod('epreuve-test-api', { API_URL: url, TIMEOUT_SECONDS: '1' });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`${url}/healthz: .*ECONNREFUSED`));
  });

  it('the gateway test passes against a real gateway serving the chart’s certificate', async () => {
    const res = await runPod('epreuve-test-gateway', {
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(gatewayPort.sandboxes),
      GATEWAY_METRICS_URL: `http://127.0.0.1:${gatewayPort.metrics}`,
    });
    expect(res.stderr).toBe('');
    expect(res.stdout).toContain('/readyz: 200');
    expect(res.stdout).toContain('503 for an unknown sandbox, certificate for *.sandbox.example.com');
    expect(res.code).toBe(0);
    // The gateway saw it: a refused connection for the test's name.
    await eventually(async () =>
      expect(gatewayLog).toMatch(/"label":"epreuve-helm-test".*sandbox connection refused/),
    );
  });

  it('the gateway test fails when the certificate is not for the domain it is given', async () => {
    const res = await runPod('epreuve-test-gateway', {
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(gatewayPort.sandboxes),
      GATEWAY_METRICS_URL: `http://127.0.0.1:${gatewayPort.metrics}`,
      GATEWAY_DOMAIN: 'other.example.com',
      TIMEOUT_SECONDS: '1',
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('certificate names DNS:*.sandbox.example.com, not *.other.example.com');
  });
});
