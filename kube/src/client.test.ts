import { describe, expect, it } from 'vitest';
import { resourceOfPath } from './client.ts';
import { resourceFor, resourcePath } from './resources.ts';

describe('resourceOfPath', () => {
  it.each([
    ['/api/v1/namespaces', 'namespaces'],
    ['/api/v1/namespaces/epreuve-x', 'namespaces'],
    ['/api/v1/namespaces/ns/secrets', 'secrets'],
    ['/api/v1/namespaces/ns/secrets/db-credentials', 'secrets'],
    ['/apis/epreuve.dev/v1alpha1/namespaces/hiring/assessments/jane/status', 'assessments/status'],
    ['/apis/apps/v1/statefulsets?watch=true', 'statefulsets'],
  ])('%s → %s', (path, resource) => expect(resourceOfPath(path)).toBe(resource));
});

describe('resourceFor', () => {
  it("knows Épreuve's kinds, so apply/create/update of a custom resource find its path", () => {
    const type = resourceFor('epreuve.dev/v1alpha1', 'Assessment');
    expect(resourcePath(type, 'hiring', 'jane')).toBe(
      '/apis/epreuve.dev/v1alpha1/namespaces/hiring/assessments/jane',
    );
  });
});
