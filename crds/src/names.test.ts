import { describe, expect, it } from 'vitest';
import {
  assessmentHostLabel,
  candidateNamespace,
  HOST_KEY_LENGTH,
  HOST_KEY_PATTERN,
  MAX_ASSESSMENT_NAME,
  newHostKey,
  sandboxHostLabel,
  shortHash,
} from './names.ts';

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

describe('host keys and sandboxHostLabel', () => {
  it('draws 16 base32 characters from 80 random bits, different each time', () => {
    const key = newHostKey();
    expect(key).toMatch(new RegExp(HOST_KEY_PATTERN));
    expect(key).toHaveLength(HOST_KEY_LENGTH);
    expect(new Set(Array.from({ length: 50 }, () => newHostKey())).size).toBe(50);
    // Every bit of the random bytes lands in the key (the whole alphabet, in order).
    expect(newHostKey(() => Buffer.from([0x00, 0x44, 0x32, 0x14, 0xc7]))).toBe('abcdefgh');
    expect(newHostKey(() => Buffer.alloc(10, 0xff))).toBe('7'.repeat(16));
  });

  it('names the sandbox and the key, nothing derived from the team or the assessment', () => {
    expect(sandboxHostLabel('abcdefghijklmnop', 'warehouse')).toBe('warehouse-abcdefghijklmnop');
    expect(assessmentHostLabel({ status: { hostKey: 'abcdefghijklmnop' } }, 'events')).toBe(
      'events-abcdefghijklmnop',
    );
  });

  it('has no label before the operator drew a key', () => {
    expect(assessmentHostLabel({}, 'warehouse')).toBeUndefined();
    expect(assessmentHostLabel({ status: {} }, 'warehouse')).toBeUndefined();
  });

  it('refuses a key that is not one it drew, naming it', () => {
    expect(() => sandboxHostLabel('short', 'warehouse')).toThrow(/host key "short" must be 16 base32/);
    expect(() => sandboxHostLabel('ABCDEFGHIJKLMNOP', 'warehouse')).toThrow(/host key/);
  });

  it('fits a DNS label with the longest sandbox name', () => {
    const label = sandboxHostLabel(newHostKey(), 'w'.repeat(30));
    expect(label.length).toBeLessThanOrEqual(63);
    expect(label).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  });
});
