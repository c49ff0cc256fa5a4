import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const root = join(import.meta.dirname, '..', '..');
// Sample templates live in the chart (charts/epreuve/samples); manifests/samples adds an Assessment.
const sampleDirs = [join(root, 'charts', 'epreuve', 'samples'), join(root, 'manifests', 'samples')];

/** A sample manifest (a chart sample template, or one of manifests/samples), parsed. */
export function sample<T = Record<string, unknown>>(file: string): T {
  const path = sampleDirs.map((d) => join(d, file)).find((p) => existsSync(p));
  if (!path) throw new Error(`no sample ${file} in ${sampleDirs.join(' or ')}`);
  return parse(readFileSync(path, 'utf8')) as T;
}

export function assessmentObject(
  namespace: string,
  name: string,
  spec: Record<string, unknown> = {},
  metadata: Record<string, unknown> = {},
) {
  return {
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'Assessment',
    metadata: { name, namespace, ...metadata },
    spec: {
      templateRef: { name: 'data-engineer' },
      candidate: { name: `Candidate ${name}`, email: `${name}@example.com` },
      ...spec,
    },
  };
}
