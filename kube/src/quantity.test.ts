import { describe, expect, it } from 'vitest';
import { parseQuantity } from './quantity.ts';

describe('parseQuantity', () => {
  it.each([
    ['500m', 0.5],
    ['2', 2],
    ['1.5', 1.5],
    ['4Gi', 4 * 2 ** 30],
    ['256Mi', 256 * 2 ** 20],
    ['1G', 1e9],
    ['1e3', 1000],
  ])('%s', (q, n) => expect(parseQuantity(q)).toBeCloseTo(n));

  it('refuses nonsense, naming it', () =>
    expect(() => parseQuantity('lots')).toThrow(/"lots" is not a Kubernetes quantity/));
});
