import {
  type Assessment,
  type AssessmentTemplate,
  assessmentSpec,
  assessmentTemplateSpec,
} from '@epreuve/crds';
import { loadConfig } from '../config.ts';
import type { Context } from './desired.ts';

/** Test fixtures: a parsed (defaulted) template and assessment, as the API server would return them. */
export function template(spec: Record<string, unknown> = {}): AssessmentTemplate {
  return {
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'AssessmentTemplate',
    metadata: { name: 'data-engineer', namespace: 'hiring', generation: 1 },
    spec: assessmentTemplateSpec.parse({
      title: 'Data engineer',
      sandboxes: [
        { name: 'warehouse', postgres: { dataset: 'retail@1' } },
        { name: 'events', mongo: { dataset: 'retail@1' } },
        { name: 'source', dataApi: { dataset: 'retail@1' } },
      ],
      ...spec,
    }),
  };
}

export function assessment(
  spec: Record<string, unknown> = {},
  metadata: Record<string, unknown> = {},
): Assessment {
  return {
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'Assessment',
    metadata: {
      name: 'jane-doe',
      namespace: 'hiring',
      generation: 1,
      creationTimestamp: '2026-11-22T10:00:00Z',
      ...metadata,
    },
    spec: assessmentSpec.parse({
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Jane Doe', email: 'jane@example.com' },
      ...spec,
    }),
  };
}

export function context(t = template(), a = assessment()): Context {
  return { assessment: a, template: t, config: loadConfig({}) };
}
