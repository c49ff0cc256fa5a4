/**
 * Writes the kustomize base (manifests/base/epreuve.yaml) from the Helm chart rendered with its
 * defaults, so `kubectl apply -k` users get exactly what `helm install` gives, and copies the
 * chart's sample templates to manifests/samples.
 *   node hack/generate-manifests.ts          write the files
 *   node hack/generate-manifests.ts --check  exit 1 if one is missing or stale
 *   --root <dir>                             compare/write under another checkout (tests)
 * The candidate-link key Secret is left out (a committed base must not carry a private key: see
 * manifests/base/README.md), and so are Helm's own labels, which would churn on every chart bump.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { HACK_DIR, kubeVersion } from './cluster/assets.ts';

export const REPO_ROOT = join(HACK_DIR, '..');
export const BASE_FILE = 'manifests/base/epreuve.yaml';
export const NAMESPACE = 'epreuve-system';
const LINK_KEY_SECRET = 'epreuve-link-key';
const HELM_LABELS = ['helm.sh/chart', 'app.kubernetes.io/managed-by'];
const HELM_ANNOTATIONS = ['helm.sh/resource-policy'];
const HEADER =
  '# Generated from charts/epreuve (default values) by `make generate` (hack/generate-manifests.ts).\n' +
  '# Do not edit by hand. The epreuve-link-key Secret is not here: see README.md.\n';

type Obj = {
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { template?: { metadata?: Obj['metadata'] } };
};

/** The cached, pinned helm (hack/build-go-tool.sh builds it once and prints its path). */
export function helmPath(): string {
  return execFileSync(join(HACK_DIR, 'build-go-tool.sh'), ['helm'], { stdio: ['ignore', 'pipe', 'inherit'] })
    .toString()
    .trim();
}

function strip(meta: Obj['metadata'] | undefined): void {
  if (!meta) return;
  for (const [field, keys] of [
    ['labels', HELM_LABELS],
    ['annotations', HELM_ANNOTATIONS],
  ] as const) {
    const map = meta[field];
    if (!map) continue;
    for (const k of keys) delete map[k];
    if (Object.keys(map).length === 0) delete meta[field];
  }
}

/** The base's content: the chart's default render minus the key Secret and Helm's labels. */
export function renderBase(helm = helmPath(), root = REPO_ROOT): string {
  const rendered = execFileSync(
    helm,
    [
      'template',
      'epreuve',
      join(root, 'charts', 'epreuve'),
      '--namespace',
      NAMESPACE,
      '--kube-version',
      kubeVersion().replace(/^v/, ''),
      '--set',
      'samples.enabled=false',
      // `helm test` pods are Helm's to run, not part of an installation.
      '--skip-tests',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const objects = parseAllDocuments(rendered)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
  const kept = objects.filter((o) => !(o.kind === 'Secret' && o.metadata.name === LINK_KEY_SECRET));
  // Fail loudly if the chart renamed the key Secret: a generated key must never be committed.
  if (kept.length !== objects.length - 1) {
    throw new Error(
      `the chart no longer renders Secret ${LINK_KEY_SECRET}; update hack/generate-manifests.ts`,
    );
  }
  for (const o of kept) {
    strip(o.metadata);
    strip(o.spec?.template?.metadata);
  }
  return HEADER + kept.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');
}

/** The sample templates: kept in the chart (it can only read its own files), copied here. */
export const SAMPLES = ['data-engineer', 'backend-engineer'];

/** Every generated file under root: repo-relative path → content. */
export function generatedFiles(helm = helmPath(), root = REPO_ROOT): Map<string, string> {
  const files = new Map([[BASE_FILE, renderBase(helm, root)]]);
  for (const name of SAMPLES) {
    const source = `charts/epreuve/samples/${name}.yaml`;
    files.set(
      `manifests/samples/${name}.yaml`,
      `# Copied from ${source} by \`make generate\`. Do not edit by hand.\n${readFileSync(join(root, source), 'utf8')}`,
    );
  }
  return files;
}

/** Generated paths whose content under root is missing or differs. */
export function staleFiles(files: Map<string, string>, root = REPO_ROOT): string[] {
  return [...files]
    .filter(([path, content]) => {
      try {
        return readFileSync(join(root, path), 'utf8') !== content;
      } catch {
        return true; // missing counts as stale
      }
    })
    .map(([path]) => path);
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  const at = process.argv.indexOf('--root');
  const root = at > 0 ? (process.argv[at + 1] ?? REPO_ROOT) : REPO_ROOT;
  const files = generatedFiles(helmPath(), root);
  if (process.argv.includes('--check')) {
    const stale = staleFiles(files, root);
    if (stale.length) {
      console.error(`stale generated files (run \`make generate\`):\n  ${stale.join('\n  ')}`);
      process.exit(1);
    }
    console.log('the kustomize base and samples are up to date');
  } else {
    for (const [path, content] of files) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), content);
      console.log(`wrote ${path}`);
    }
  }
}
