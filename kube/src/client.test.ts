import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { KubeClient, resourceOfPath } from './client.ts';
import { resourcePath } from './resources.ts';

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

describe('KubeClient.resourceOf', () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const assessment = {
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'Assessment',
    plural: 'assessments',
    namespaced: true,
  };

  it('finds a custom kind given to the client, so apply/create/update of a custom resource find its path', () => {
    const client = new KubeClient(kc, { kinds: [assessment] });
    expect(resourcePath(client.resourceOf('epreuve.dev/v1alpha1', 'Assessment'), 'hiring', 'jane')).toBe(
      '/apis/epreuve.dev/v1alpha1/namespaces/hiring/assessments/jane',
    );
    expect(client.resourceOf('v1', 'Secret').plural).toBe('secrets');
  });

  it('refuses a kind it was not given, saying where kinds come from', () => {
    expect(() => new KubeClient(kc).resourceOf('epreuve.dev/v1alpha1', 'Assessment')).toThrow(
      /`kinds` option/,
    );
  });
});
