import { describe, expect, it } from 'vitest';
import { StringPool } from './intern.ts';

describe('StringPool', () => {
  it('holds one copy of equal strings', () => {
    const pool = new StringPool();
    // Two distinct string objects of equal value (JSON.parse makes one per value read).
    const [a, b] = JSON.parse('["epreuve-jane-x1","epreuve-jane-x1"]') as string[];
    expect(pool.intern(a!)).toBe(a);
    expect(pool.intern(b!)).toBe(a);
    expect(pool.size).toBe(1);
  });

  it('interns the values of a record, keeping its entries', () => {
    const pool = new StringPool();
    pool.intern('epreuve');
    expect(pool.internValues({ 'app.kubernetes.io/managed-by': 'epreuve', x: 'y' })).toEqual({
      'app.kubernetes.io/managed-by': 'epreuve',
      x: 'y',
    });
    expect(pool.size).toBe(4);
  });

  it('starts over past its bound instead of growing forever', () => {
    const pool = new StringPool(2);
    pool.intern('a');
    pool.intern('b');
    pool.intern('c');
    expect(pool.size).toBe(1);
    expect(pool.intern('c')).toBe('c');
  });
});
