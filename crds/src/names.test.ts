import { describe, expect, it } from 'vitest';
import { candidateNamespace, MAX_ASSESSMENT_NAME, sandboxHostLabel, shortHash } from './names.ts';

describe('candidateNamespace', () => {
  it('derives epreuve-<name>-<hash>, stable for the same inputs', () => {
    const ns = candidateNamespace('hiring', 'jane-doe');
    expect(ns).toMatch(/^epreuve-jane-doe-[a-z0-9]{5}$/);
    expect(candidateNamespace('hiring', 'jane-doe')).toBe(ns);
  });

  it('differs between teams using the same assessment name', () => {
    expect(candidateNamespace('team-a', 'jane-doe')).not.toBe(candidateNamespace('team-b', 'jane-doe'));
  });

  it('fits a DNS label for the longest allowed name', () => {
    const ns = candidateNamespace('hiring', 'a'.repeat(MAX_ASSESSMENT_NAME));
    expect(ns.length).toBe(63);
    expect(ns).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it('refuses a name one character too long, naming it', () => {
    expect(() => candidateNamespace('hiring', 'a'.repeat(MAX_ASSESSMENT_NAME + 1))).toThrow(/longer than 49/);
  });

  it('hashes to five DNS-safe characters', () => {
    expect(shortHash('x')).toMatch(/^[a-z0-9]{5}$/);
    expect(shortHash('x')).not.toBe(shortHash('y'));
  });
});

describe('sandboxHostLabel', () => {
  it('is a stable DNS label naming the sandbox, distinct per team and assessment', () => {
    const label = sandboxHostLabel('hiring', 'jane-doe', 'warehouse');
    expect(label).toMatch(/^warehouse-[a-z0-9]{8}$/);
    expect(sandboxHostLabel('hiring', 'jane-doe', 'warehouse')).toBe(label);
    expect(sandboxHostLabel('other', 'jane-doe', 'warehouse')).not.toBe(label);
    expect(sandboxHostLabel('hiring', 'john-roe', 'warehouse')).not.toBe(label);
  });

  it('fits a DNS label with the longest sandbox name', () => {
    expect(
      sandboxHostLabel('hiring', 'a'.repeat(MAX_ASSESSMENT_NAME), 'w'.repeat(30)).length,
    ).toBeLessThanOrEqual(63);
  });
});
