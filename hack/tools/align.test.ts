import { describe, expect, it } from 'vitest';
import { compareGoVersions, upgrades } from './align.ts';

describe('compareGoVersions', () => {
  it.each([
    ['v1.2.3', 'v1.2.4'],
    ['v1.9.0', 'v1.10.0'],
    ['v0.37.0', 'v0.37.2'],
    ['v2.0.0', 'v10.0.0'],
    // A pseudo-version before v1.36.12 is a pre-release of it: older than the release.
    ['v1.36.12-0.20260120151049-f2248ac996af', 'v1.36.12'],
    ['v0.0.0-20250730193827-2d320260d730', 'v0.0.0-20260128011058-8636f8732409'],
    ['v1.0.0-alpha', 'v1.0.0-alpha.1'],
    ['v1.0.0-alpha.1', 'v1.0.0-alpha.beta'],
    ['v1.0.0-beta.2', 'v1.0.0-beta.11'],
    ['v1.0.0-rc.1', 'v1.0.0'],
    ['v2.5.0+incompatible', 'v2.6.0+incompatible'],
  ])('%s < %s', (older, newer) => {
    expect(compareGoVersions(older, newer)).toBeLessThan(0);
    expect(compareGoVersions(newer, older)).toBeGreaterThan(0);
    expect(compareGoVersions(newer, newer)).toBe(0);
  });

  it('refuses what is not a module version, naming it', () => {
    expect(() => compareGoVersions('1.2.3', 'v1.2.3')).toThrow('not a Go module version: "1.2.3"');
  });
});

describe('upgrades', () => {
  it('raises only the shared modules the reference has newer, never lowers one', () => {
    const target = new Map([
      ['k8s.io/api', 'v0.37.0'],
      ['google.golang.org/grpc', 'v1.83.2'],
      ['golang.org/x/net', 'v0.57.0'],
      ['github.com/only/target', 'v1.0.0'],
    ]);
    const reference = new Map([
      ['k8s.io/api', 'v0.37.2'],
      ['google.golang.org/grpc', 'v1.79.3'],
      ['golang.org/x/net', 'v0.62.0'],
      ['github.com/only/reference', 'v2.0.0'],
    ]);
    expect(upgrades(target, reference)).toEqual(['golang.org/x/net@v0.62.0', 'k8s.io/api@v0.37.2']);
    expect(upgrades(target, target)).toEqual([]);
  });
});
