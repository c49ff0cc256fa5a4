/**
 * Writes the CRD YAML generated from the zod schemas into the Helm chart and the kustomize base.
 *   node crds/src/generate.ts          write the files
 *   node crds/src/generate.ts --check  exit 1 if a file is missing or stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { allCrds } from './crd.ts';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CRD_DIRS = ['charts/epreuve/crds', 'manifests/crds'];

const HEADER = '# Generated from crds/src by `npm run generate`. Do not edit by hand.\n';

/** Every generated file: repo-relative path → content. */
export function generatedFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const crds = allCrds();
  for (const dir of CRD_DIRS) {
    for (const crd of crds) {
      files.set(
        `${dir}/${crd.metadata.name.replace(/^([^.]+)\.(.*)$/, '$2_$1')}.yaml`,
        HEADER + stringify(crd),
      );
    }
  }
  files.set(
    'manifests/crds/kustomization.yaml',
    `${HEADER}${stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: crds.map((c) => `${c.metadata.name.replace(/^([^.]+)\.(.*)$/, '$2_$1')}.yaml`),
    })}`,
  );
  return files;
}

/** Paths whose content on disk differs from what the schemas generate. */
export function staleFiles(root = REPO_ROOT): string[] {
  const stale: string[] = [];
  for (const [path, content] of generatedFiles()) {
    let current = '';
    try {
      current = readFileSync(join(root, path), 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== content) stale.push(path);
  }
  return stale;
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  if (process.argv.includes('--check')) {
    const stale = staleFiles();
    if (stale.length) {
      console.error(`stale generated files (run \`npm run generate\`):\n  ${stale.join('\n  ')}`);
      process.exit(1);
    }
    console.log('generated CRDs are up to date');
  } else {
    for (const [path, content] of generatedFiles()) {
      writeFileSync(join(REPO_ROOT, path), content);
      console.log(`wrote ${path}`);
    }
  }
}
