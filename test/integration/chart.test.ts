import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { HACK_DIR } from '../../hack/cluster/assets.ts';
import { createTestNamespace, kubectl } from '../harness/kube.ts';

/** The Helm chart, checked by real tools: helm lint, helm template, and a server-side dry run. */
const kubeconfig = inject('kubeconfig');
const CHART = join(import.meta.dirname, '..', '..', 'charts', 'epreuve');
let helm: string;
let ns: string;
const dir = mkdtempSync(join(tmpdir(), 'epreuve-values-'));

const values = (name: string, yaml: string) => {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, yaml);
  return path;
};
const template = (files: string[] = []) =>
  spawnSync(
    helm,
    ['template', 'epreuve', CHART, '-n', ns, '--kube-version', '1.33.13', ...files.flatMap((f) => ['-f', f])],
    { encoding: 'utf8' },
  );

beforeAll(async () => {
  helm = execFileSync(join(HACK_DIR, 'build-go-tool.sh'), ['helm'], { stdio: ['ignore', 'pipe', 'inherit'] })
    .toString()
    .trim();
  ns = await createTestNamespace(kubeconfig, 'epreuve-system');
}, 600_000);

describe('helm chart', () => {
  it('passes helm lint --strict', () => {
    const res = spawnSync(helm, ['lint', '--strict', CHART], { encoding: 'utf8' });
    expect(res.stdout + res.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(res.status).toBe(0);
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
  ];
  it.each(bad)('values.schema.json rejects %s with a clear message', (_label, yaml, message) => {
    const res = template([values('bad', yaml)]);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(message);
  });
});
