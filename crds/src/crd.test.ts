import { describe, expect, it } from 'vitest';
import { allCrds } from './crd.ts';

/**
 * Short names are global to a cluster's discovery: `kubectl get <short>` picks one resource, so a
 * short name another popular project already uses makes one of the two unreachable by it.
 */
const TAKEN = {
  'Kubernetes itself': [
    'cm',
    'cs',
    'csr',
    'ds',
    'deploy',
    'ep',
    'ev',
    'hpa',
    'ing',
    'limits',
    'netpol',
    'no',
    'ns',
    'pdb',
    'po',
    'psp',
    'pv',
    'pvc',
    'quota',
    'rc',
    'rs',
    'sa',
    'sc',
    'sts',
    'svc',
    'crd',
    'crds',
    'pc',
  ],
  OLM: ['sub', 'subs', 'csv', 'csvs', 'ip', 'og', 'catsrc'],
  'Knative Serving and Eventing': ['ksvc', 'kcfg', 'rt', 'rev', 'sub', 'kne'],
  'cert-manager': ['cert', 'certs', 'cr', 'crs', 'iss', 'ciss'],
  'Argo CD': ['app', 'apps', 'appproj', 'appprojs', 'appset', 'appsets'],
  'Prometheus operator': ['smon', 'pmon', 'promrule', 'prom', 'am', 'amcfg'],
  Flux: ['ks', 'hr', 'gitrepo', 'helmrepo'],
};

describe('CRD short names', () => {
  const names = allCrds().flatMap((c) => c.spec.names.shortNames ?? []);

  it('are the documented ones', () => {
    expect(names).toEqual(['atpl', 'asmt', 'epsub']);
  });

  it.each(Object.entries(TAKEN))('collide with none of %s', (_project, taken) => {
    for (const n of names) expect(taken, n).not.toContain(n);
  });
});
