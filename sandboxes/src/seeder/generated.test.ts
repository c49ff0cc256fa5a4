import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Dataset, resolveDataset } from '../datasets/catalog.ts';
import { prebuiltFile, writePrebuilt } from '../datasets/prebuilt.ts';
import { generatedOnce, prepareTables } from './generated.ts';

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

describe('prepareTables', () => {
  const real = resolveDataset('retail@1');
  /** A dataset of its own name (its own cache keys and files) that counts its generations. */
  const counted = (name: string) => {
    const calls: string[] = [];
    const d: Dataset = {
      ...real,
      name,
      generate: (size, variant, scope) => {
        calls.push(`${size}/${variant}/${scope}`);
        return real.generate(size, variant, scope);
      },
    };
    return { d, calls };
  };

  it("memoises the image's prebuilt tables for generatedOnce, generating nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), 'prepare-'));
    try {
      const { d, calls } = counted('prebuilt-ok');
      writePrebuilt(dir, d, 'small', 5);
      calls.length = 0;
      const lines: string[] = [];
      expect(prepareTables(d, 'small', 5, { dir, log: (l) => lines.push(l) })).toBe('prebuilt');
      const tables = generatedOnce(d).generate('small', 5, 'tables');
      expect(tables).toStrictEqual(real.generate('small', 5, 'tables'));
      expect(prepareTables(d, 'small', 5, { dir, log: (l) => lines.push(l) })).toBe('memoised');
      expect(calls).toEqual([]);
      expect(lines).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('generates when there is no prebuilt directory, no file, or an unusable one (saying why)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prepare-'));
    try {
      const { d, calls } = counted('prebuilt-bad');
      const lines: string[] = [];
      const log = (l: string) => lines.push(l);
      expect(prepareTables(d, 'small', 1)).toBe('generated');
      expect(prepareTables(d, 'small', 2, { dir, log })).toBe('generated');
      writePrebuilt(dir, d, 'small', 3);
      writeFileSync(prebuiltFile(dir, d, 'small', 3), 'not a prebuilt file');
      calls.length = 0;
      expect(prepareTables(d, 'small', 3, { dir, log })).toBe('generated');
      expect(calls).toEqual(['small/3/tables']);
      expect(lines).toEqual([
        `prebuilt: ignoring ${prebuiltFile(dir, d, 'small', 3)}: no header line; generating instead`,
      ]);
      expect(generatedOnce(d).generate('small', 3, 'tables')).toStrictEqual(
        real.generate('small', 3, 'tables'),
      );
      // A full dataset already generated serves the tables too.
      generatedOnce(d).generate('small', 4);
      expect(prepareTables(d, 'small', 4, { dir, log })).toBe('memoised');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
