import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { LinkSigner } from '../../api/src/services/links.ts';
import { kubeVersion } from '../../hack/cluster/assets.ts';
import { BASE_FILE, helmPath, REPO_ROOT } from '../../hack/generate-manifests.ts';
import { EXERCISES } from '../../sandboxes/src/exercises/index.ts';
import { createTestNamespace, kubectl } from '../harness/kube.ts';
import { installThirdPartyCrds } from '../harness/third-party-crds.ts';

/**
 * The kustomize base, the samples and the Argo CD manifests, checked by the real API server
 * (server-side dry runs, and the sample templates created for real) and against the chart.
 */
const kubeconfig = inject('kubeconfig');
const at = (...p: string[]) => join(REPO_ROOT, ...p);
const tmp = mkdtempSync(join(tmpdir(), 'epreuve-manifests-'));
let helm: string;

type Obj = Record<string, any>;
const docs = (yaml: string): Obj[] =>
  parseAllDocuments(yaml)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const helmTemplate = (ns: string, args: string[] = []) =>
  run(helm, [
    'template',
    'epreuve',
    at('charts', 'epreuve'),
    '-n',
    ns,
    '--kube-version',
    kubeVersion(),
    ...args,
  ]);
/** A throw-away kustomization that builds on `target` (kustomize wants relative paths). */
const overlay = (name: string, body: Obj, files: Record<string, string> = {}) => {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, content] of Object.entries(files)) writeFileSync(join(dir, f), content);
  const resources = (body.resources as string[]).map((r) => relative(dir, at(r)));
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', ...body, resources }),
  );
  return dir;
};

beforeAll(async () => {
  helm = helmPath();
  await installThirdPartyCrds(kubeconfig, 'argo-cd');
  await installThirdPartyCrds(kubeconfig, 'prometheus-operator');
  // The base targets the real platform namespace; create it (for real) so the dry run can land.
  const ns = await kubectl(kubeconfig, [
    'apply',
    '--server-side',
    '-f',
    at('manifests', 'base', 'namespace.yaml'),
  ]);
  if (ns.code !== 0) throw new Error(ns.stderr);
}, 600_000);

describe('kustomize base', () => {
  it('is what the chart renders with its defaults (make lint staleness check passes)', () => {
    const res = run('node', [at('hack', 'generate-manifests.ts'), '--check']);
    expect(res.stdout).toContain('the kustomize base and samples are up to date');
    expect(res.status).toBe(0);
  });

  it('the check fails, naming the files, when the chart changes and the copies do not', () => {
    const root = join(tmp, 'stale');
    cpSync(at('charts', 'epreuve'), join(root, 'charts', 'epreuve'), { recursive: true });
    cpSync(at('manifests'), join(root, 'manifests'), { recursive: true });
    expect(run('node', [at('hack', 'generate-manifests.ts'), '--check', '--root', root]).status).toBe(0);
    const values = join(root, 'charts', 'epreuve', 'values.yaml');
    writeFileSync(values, readFileSync(values, 'utf8').replace('replicas: 2 ', 'replicas: 3 '));
    const sample = join(root, 'charts', 'epreuve', 'samples', 'backend-engineer.yaml');
    writeFileSync(sample, readFileSync(sample, 'utf8').replace('duration: 90m', 'duration: 2h'));
    const res = run('node', [at('hack', 'generate-manifests.ts'), '--check', '--root', root]);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain(
      'stale generated files (run `make generate`):\n  manifests/base/epreuve.yaml\n  manifests/samples/backend-engineer.yaml\n',
    );
    // ...and regenerating fixes it.
    expect(run('node', [at('hack', 'generate-manifests.ts'), '--root', root]).status).toBe(0);
    expect(readFileSync(join(root, BASE_FILE), 'utf8')).toMatch(/name: epreuve-operator[\s\S]*replicas: 3/);
    expect(run('node', [at('hack', 'generate-manifests.ts'), '--check', '--root', root]).status).toBe(0);
  });

  it('holds no private key and none of Helm’s labels, but every platform object', () => {
    const text = readFileSync(at(BASE_FILE), 'utf8');
    expect(text).not.toMatch(/PRIVATE KEY|kind: Secret|helm\.sh\/|managed-by: Helm/);
    const kinds = docs(text).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'Deployment/epreuve-operator',
        'Deployment/epreuve-api',
        'Service/epreuve-api',
        'Service/epreuve-api-metrics',
        'ServiceAccount/epreuve-operator',
        'ClusterRole/epreuve-sandbox-reader',
        'NetworkPolicy/epreuve-platform',
        'PodDisruptionBudget/epreuve-api',
      ]),
    );
  });

  it('passes kubectl apply --server-side --dry-run=server -k manifests/base', async () => {
    const res = await kubectl(kubeconfig, [
      'apply',
      '--server-side',
      '--dry-run=server',
      '-k',
      at('manifests', 'base'),
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(
      /customresourcedefinition.apiextensions.k8s.io\/assessments.epreuve.dev serverside-applied/,
    );
    expect(res.stdout).toMatch(/deployment.apps\/epreuve-operator serverside-applied \(server dry run\)/);
    // Namespace + 3 CRDs + the generated objects.
    const generated = docs(readFileSync(at(BASE_FILE), 'utf8')).length;
    expect(res.stdout.trim().split('\n')).toHaveLength(1 + 3 + generated);
  });

  it('moves wholesale to another namespace with an overlay: objects, RBAC subjects, and the operator’s settings', async () => {
    const dir = overlay('elsewhere', { namespace: 'hiring-platform', resources: ['manifests/base'] });
    const built = await kubectl(kubeconfig, ['kustomize', dir]);
    expect(built.code).toBe(0);
    const objs = docs(built.stdout);
    const namespaced = objs.filter((o) => o.metadata.namespace);
    expect(new Set(namespaced.map((o) => o.metadata.namespace))).toEqual(new Set(['hiring-platform']));
    expect(objs.find((o) => o.kind === 'Namespace')?.metadata.name).toBe('hiring-platform');
    const subjects = objs.flatMap((o) => o.subjects ?? []);
    expect(subjects.length).toBeGreaterThan(0);
    for (const s of subjects) expect(s.namespace).toBe('hiring-platform');
    // The operator learns its namespace from the downward API, not from a value kustomize cannot see.
    const env = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'epreuve-operator')!.spec
      .template.spec.containers[0].env as Obj[];
    expect(env.find((e) => e.name === 'EPREUVE_PLATFORM_NAMESPACE')).toEqual({
      name: 'EPREUVE_PLATFORM_NAMESPACE',
      valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
    expect(JSON.stringify(objs)).not.toContain('epreuve-system');
  });

  it('the README’s overlay, with a key from openssl genpkey, passes the dry run and the key loads in the API', async () => {
    const key = join(tmp, 'link-key.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key]);
    const dir = overlay(
      'with-key',
      {
        resources: ['manifests/base'],
        secretGenerator: [
          {
            name: 'epreuve-link-key',
            namespace: 'epreuve-system',
            files: ['link-key.pem'],
            options: { disableNameSuffixHash: true },
          },
        ],
        images: [{ name: 'ghcr.io/epreuve/api', newTag: '9.9.9' }],
      },
      { 'link-key.pem': readFileSync(key, 'utf8') },
    );
    const built = await kubectl(kubeconfig, ['kustomize', dir]);
    expect(built.code).toBe(0);
    const objects = docs(built.stdout);
    const secret = objects.find((o) => o.kind === 'Secret');
    expect(secret?.metadata).toMatchObject({ name: 'epreuve-link-key', namespace: 'epreuve-system' });
    const pem = Buffer.from(secret?.data['link-key.pem'], 'base64').toString();
    const signer = await LinkSigner.fromPem(pem);
    const token = await signer.sign({
      assessment: 't/a',
      linkId: 'l1',
      expiresAt: new Date(Date.now() + 60_000),
    });
    expect((await signer.verify(token)).assessment).toBe('t/a');
    const api = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'epreuve-api');
    expect(api?.spec.template.spec.containers[0].image).toBe('ghcr.io/epreuve/api:9.9.9');

    const res = await kubectl(kubeconfig, ['apply', '--server-side', '--dry-run=server', '-k', dir]);
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(/secret\/epreuve-link-key serverside-applied \(server dry run\)/);
  });
});

describe('samples', () => {
  const sample = (name: string): Obj =>
    parse(readFileSync(at('charts', 'epreuve', 'samples', `${name}.yaml`), 'utf8'));
  const names = ['backend-engineer', 'data-engineer'];

  it('use only exercises from the catalogue', () => {
    const known = new Set(EXERCISES.map((e) => e.id));
    for (const name of names) {
      const tasks = sample(name).spec.tasks as Obj[];
      expect(tasks.length).toBeGreaterThan(2);
      for (const t of tasks.filter((t) => t.exercise))
        expect(known, `${name}: ${t.exercise}`).toContain(t.exercise);
    }
  });

  it('kubectl apply -k manifests/samples passes the dry run (templates and an Assessment)', async () => {
    const ns = await createTestNamespace(kubeconfig, 'samples-dry');
    const res = await kubectl(kubeconfig, [
      'apply',
      '--dry-run=server',
      '-n',
      ns,
      '-k',
      at('manifests', 'samples'),
    ]);
    expect(res.stderr).toBe('');
    expect(res.stdout.trim().split('\n').sort()).toEqual([
      'assessment.epreuve.dev/jane-doe created (server dry run)',
      'assessmenttemplate.epreuve.dev/backend-engineer created (server dry run)',
      'assessmenttemplate.epreuve.dev/data-engineer created (server dry run)',
    ]);
  });

  it('manifests/samples’ templates and the chart’s are created for real and read back identical', async () => {
    const [viaKustomize, viaHelm] = await Promise.all([
      createTestNamespace(kubeconfig, 'samples-kustomize'),
      createTestNamespace(kubeconfig, 'samples-helm'),
    ]);
    const k = await kubectl(kubeconfig, [
      'apply',
      '--server-side',
      '-n',
      viaKustomize,
      ...names.flatMap((n) => ['-f', at('manifests', 'samples', `${n}.yaml`)]),
    ]);
    expect(k.stderr).toBe('');
    // The chart's samples, to another namespace through samples.namespace.
    const rendered = helmTemplate('elsewhere', [
      '--set',
      `samples.enabled=true,samples.namespace=${viaHelm}`,
      '-s',
      'templates/samples.yaml',
    ]);
    expect(rendered.stderr).toBe('');
    const h = await kubectl(kubeconfig, ['apply', '--server-side', '-f', '-'], rendered.stdout);
    expect(h.stderr).toBe('');

    const read = async (ns: string) => {
      const got = await kubectl(kubeconfig, ['get', 'assessmenttemplates', '-n', ns, '-o', 'json']);
      expect(got.code).toBe(0);
      return new Map((JSON.parse(got.stdout).items as Obj[]).map((i) => [i.metadata.name, i]));
    };
    const [fromK, fromH] = await Promise.all([read(viaKustomize), read(viaHelm)]);
    expect([...fromK.keys()].sort()).toEqual(names);
    for (const name of names) {
      expect(fromK.get(name)?.spec).toMatchObject(sample(name).spec);
      expect(fromH.get(name)?.spec).toEqual(fromK.get(name)?.spec);
      expect(fromH.get(name)?.metadata.annotations).toMatchObject({ 'argocd.argoproj.io/sync-wave': '1' });
    }
  });

  const bad: Array<[string, (s: Obj) => void, RegExp]> = [
    [
      'a task naming a sandbox the template does not have',
      (s) => {
        s.spec.tasks[0].sandbox = 'nowhere';
      },
      /every task must name a sandbox of this template/,
    ],
    [
      'a duration beyond maxDuration',
      (s) => {
        s.spec.duration = '9h';
      },
      /duration must not exceed maxDuration/,
    ],
    [
      'a sandbox of two kinds',
      (s) => {
        s.spec.sandboxes[0].mongo = { dataset: 'retail@1' };
      },
      /a sandbox must set exactly one kind/,
    ],
  ];
  it.each(bad)('a sample with %s is refused by the API server', async (_label, mutate, message) => {
    const s = sample('data-engineer');
    mutate(s);
    const res = await kubectl(
      kubeconfig,
      ['apply', '--dry-run=server', '-n', 'default', '-f', '-'],
      stringify(s),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(message);
  });

  it('values.schema.json refuses a samples namespace that is not a namespace name', () => {
    const res = helmTemplate('x', ['--set', 'samples.enabled=true,samples.namespace=Team_A']);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/\/samples\/namespace.*does not match pattern/);
  });
});

describe('Argo CD manifests', () => {
  const file = (name: string): Obj => parse(readFileSync(at('argocd', name), 'utf8'));
  const ENVS = ['dev', 'staging', 'prod'];

  it.each(['project.yaml', 'application.yaml', 'applicationset.yaml'])(
    '%s passes a server-side dry run against Argo CD’s CRDs',
    async (name) => {
      const ns = await createTestNamespace(kubeconfig, 'argocd');
      const obj = file(name);
      expect(obj.metadata.namespace).toBe('argocd');
      obj.metadata.namespace = ns;
      const res = await kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', '-'], stringify(obj));
      expect(res.stderr).toBe('');
      expect(res.stdout).toMatch(/created \(server dry run\)/);
    },
  );

  it('kustomization.yaml holds the project and the ApplicationSet', async () => {
    const built = await kubectl(kubeconfig, ['kustomize', at('argocd')]);
    expect(built.code).toBe(0);
    expect(docs(built.stdout).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'AppProject/epreuve',
      'ApplicationSet/epreuve',
    ]);
  });

  it('a mistyped Application is refused by the CRD schema', async () => {
    const ns = await createTestNamespace(kubeconfig, 'argocd-bad');
    const app = file('application.yaml');
    app.metadata.namespace = ns;
    app.spec.source.helm.valueFiles = '../../argocd/values/dev.yaml'; // a string, not a list
    const res = await kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', '-'], stringify(app));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/spec.source.helm.valueFiles: Invalid value: "string"/);
  });

  it('every environment has a values file, reached from the chart path', () => {
    const set = file('applicationset.yaml');
    expect(set.spec.generators[0].list.elements.map((e: Obj) => e.env)).toEqual(ENVS);
    const chart = at(set.spec.template.spec.source.path);
    for (const env of ENVS) {
      const vf = set.spec.template.spec.source.helm.valueFiles[0].replace('{{ .env }}', env);
      expect(existsSync(join(chart, vf)), vf).toBe(true);
    }
    const app = file('application.yaml');
    expect(existsSync(join(at(app.spec.source.path), app.spec.source.helm.valueFiles[0]))).toBe(true);
  });

  it('ignores the data of exactly the Secrets that change on every render (lookup-kept keys)', () => {
    // Argo CD renders with `helm template`: what the chart generates once and keeps with `lookup`
    // comes out different each time, and must not be rotated by a sync.
    const render = () =>
      docs(
        helmTemplate('epreuve-system', [
          '--set',
          'gateway.enabled=true,gateway.domain=sandbox.example.com,gateway.tls.secretName=',
        ]).stdout,
      ).filter((o) => o.kind === 'Secret');
    const [a, b] = [render(), render()];
    const changing = a
      .filter(
        (s) =>
          JSON.stringify(s.data) !== JSON.stringify(b.find((t) => t.metadata.name === s.metadata.name)?.data),
      )
      .map((s) => s.metadata.name)
      .sort();
    expect(changing).toEqual(['epreuve-gateway-tls', 'epreuve-link-key']);
    const app = file('application.yaml').spec;
    const set = file('applicationset.yaml').spec.template.spec;
    for (const spec of [app, set]) {
      const ignored = (spec.ignoreDifferences as Obj[])
        .filter((d) => d.kind === 'Secret' && d.jsonPointers.includes('/data'))
        .map((d) => d.name)
        .sort();
      expect(ignored).toEqual(changing);
      expect(spec.syncPolicy.syncOptions).toContain('RespectIgnoreDifferences=true');
    }
  });

  it.each(ENVS)('the chart with values/%s.yaml passes the server-side dry run', async (env) => {
    const ns = await createTestNamespace(kubeconfig, `epreuve-${env}`);
    const rendered = helmTemplate(ns, ['-f', at('argocd', 'values', `${env}.yaml`)]);
    expect(rendered.stderr).toBe('');
    const res = await kubectl(
      kubeconfig,
      ['apply', '--dry-run=server', '-n', ns, '-f', '-'],
      rendered.stdout,
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/deployment.apps\/epreuve-api created \(server dry run\)/);
  });

  it('the AppProject allows every kind the chart renders with all toggles on, and no wildcard', () => {
    const project = file('project.yaml');
    const spec = project.spec;
    const all = JSON.stringify([
      spec.sourceRepos,
      spec.destinations,
      spec.clusterResourceWhitelist,
      spec.namespaceResourceWhitelist,
    ]);
    expect(all).not.toContain('*');
    // Argo CD does not run `helm test` hooks (it has no equivalent), so no Pod to allow here.
    const rendered = helmTemplate('epreuve-system', [
      '--include-crds',
      '--skip-tests',
      '-f',
      at('argocd', 'values', 'prod.yaml'),
      '--set',
      // The self-signed gateway certificate too, which prod (a given certificate) does not render.
      'samples.enabled=true,networkPolicy.enabled=true,podDisruptionBudget.enabled=true,gateway.tls.secretName=',
    ]);
    expect(rendered.stderr).toBe('');
    const allowed = (list: Obj[]) => new Set(list.map((r) => `${r.group}/${r.kind}`));
    const cluster = allowed(spec.clusterResourceWhitelist);
    const namespaced = allowed(spec.namespaceResourceWhitelist);
    const seen = new Set<string>();
    for (const o of docs(rendered.stdout)) {
      const gk = `${o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : ''}/${o.kind}`;
      seen.add(gk);
      if (o.metadata.namespace) {
        expect(namespaced, `${gk} ${o.metadata.name}`).toContain(gk);
        expect(spec.destinations.map((d: Obj) => d.namespace)).toContain(o.metadata.namespace);
      } else expect(cluster, `${gk} ${o.metadata.name}`).toContain(gk);
    }
    // Least privilege the other way: nothing allowed that the chart never renders (but the
    // Namespace, which CreateNamespace=true makes).
    for (const gk of [...cluster, ...namespaced]) if (gk !== '/Namespace') expect(seen, gk).toContain(gk);
  });
});
