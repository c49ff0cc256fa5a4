import { describe, expect, it } from 'vitest';
import { type Dataset, resolveDataset } from '../datasets/catalog.ts';
import { generatedOnce } from './generated.ts';

describe('generatedOnce', () => {
  it('generates each size and variant once and hands out the same data after', () => {
    const real = resolveDataset('retail@1');
    const calls: string[] = [];
    const counting: Dataset = {
      ...real,
      generate: (size, variant, scope) => {
        calls.push(`${size}/${variant}${scope ? `/${scope}` : ''}`);
        return real.generate(size, variant, scope);
      },
    };
    const once = generatedOnce(counting);
    const first = once.generate('small');
    expect(once.generate('small', 0)).toBe(first);
    expect(generatedOnce(counting).generate('small')).toBe(first); // shared across wrappers
    const hidden = once.generate('small', 1);
    expect(hidden).not.toBe(first);
    expect(hidden.transactions).not.toEqual(first.transactions);
    expect(calls).toEqual(['small/0/all', 'small/1/all']);
    expect(once.name).toBe('retail');
    expect(once.postgres).toBe(real.postgres);
  });

  it("serves PostgreSQL's tables-only request from a full dataset already generated, not the reverse", () => {
    const real = resolveDataset('retail@1');
    const calls: string[] = [];
    const once = generatedOnce({
      ...real,
      name: 'scoped', // a cache key of its own, whatever the other tests generated
      generate: (size, variant, scope) => {
        calls.push(`${variant}/${scope}`);
        return real.generate(size, variant, scope);
      },
    });
    const full = once.generate('small', 7);
    expect(once.generate('small', 7, 'tables')).toBe(full);
    const tables = once.generate('small', 8, 'tables');
    expect(once.generate('small', 8, 'tables')).toBe(tables);
    expect(once.generate('small', 8).card_events.length).toBeGreaterThan(0); // a full one is generated
    expect(calls).toEqual(['7/all', '8/tables', '8/all']);
  });
});

describe("retail@1's tables-only scope", () => {
  it('gives the same tables as the full dataset and no MongoDB collections', () => {
    const real = resolveDataset('retail@1');
    for (const variant of [0, 3]) {
      const full = real.generate('small', variant);
      const tables = real.generate('small', variant, 'tables');
      for (const { table } of real.postgres.tables) expect(tables[table]).toEqual(full[table]);
      expect(full.card_events.length).toBeGreaterThan(0);
      expect(tables.card_events).toEqual([]);
      expect(tables.app_sessions).toEqual([]);
    }
  });
});
