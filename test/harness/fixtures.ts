import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const samples = join(import.meta.dirname, '..', '..', 'manifests', 'samples');

/** A sample manifest from manifests/samples, parsed. */
export function sample<T = Record<string, unknown>>(file: string): T {
  return parse(readFileSync(join(samples, file), 'utf8')) as T;
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
