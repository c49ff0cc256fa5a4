import { describe, expect, it } from 'vitest';
import { type Dataset, resolveDataset } from '../datasets/catalog.ts';
import { generatedOnce } from './generated.ts';

describe('generatedOnce', () => {
  it('generates each size and variant once and hands out the same data after', () => {
    const real = resolveDataset('retail@1');
    const calls: string[] = [];
    const counting: Dataset = {
      ...real,
      generate: (size, variant) => {
        calls.push(`${size}/${variant}`);
        return real.generate(size, variant);
      },
    };
    const once = generatedOnce(counting);
    const first = once.generate('small');
    expect(once.generate('small', 0)).toBe(first);
    expect(generatedOnce(counting).generate('small')).toBe(first); // shared across wrappers
    const hidden = once.generate('small', 1);
    expect(hidden).not.toBe(first);
    expect(hidden.transactions).not.toEqual(first.transactions);
    expect(calls).toEqual(['small/0', 'small/1']);
    expect(once.name).toBe('retail');
    expect(once.postgres).toBe(real.postgres);
  });
});
