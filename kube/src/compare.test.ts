import { describe, expect, it } from 'vitest';
import { isSubset } from './compare.ts';

describe('isSubset', () => {
  it('ignores fields the server adds', () => {
    expect(
      isSubset(
        { spec: { ports: [{ port: 80 }] } },
        { spec: { ports: [{ port: 80, protocol: 'TCP' }], clusterIP: '10.0.0.5' }, status: {} },
      ),
    ).toBe(true);
  });

  it('sees a changed value', () =>
    expect(isSubset({ spec: { replicas: 1 } }, { spec: { replicas: 0 } })).toBe(false));
  it('sees a removed field', () =>
    expect(isSubset({ metadata: { labels: { a: 'b' } } }, { metadata: {} })).toBe(false));
  it('sees an extra array element', () => expect(isSubset({ a: [1] }, { a: [1, 2] })).toBe(false));
  it('accepts an empty object the server dropped', () => expect(isSubset({ emptyDir: {} }, {})).toBe(true));
  it('compares int-or-string loosely', () => expect(isSubset({ port: 53 }, { port: '53' })).toBe(true));
});
