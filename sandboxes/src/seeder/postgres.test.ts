import { describe, expect, it } from 'vitest';
import { resolveDataset } from '../datasets/catalog.ts';
import { layoutFingerprint, oneAtATime, preloadMismatch, type SeedMarker } from './postgres.ts';

describe('oneAtATime', () => {
  it('runs what it is given one at a time, in order, a failure not stopping the next', async () => {
    const inTurn = oneAtATime();
    const events: string[] = [];
    let running = 0;
    const step = (name: string, ms: number, fail = false) =>
      inTurn(async () => {
        running++;
        events.push(`${name} start (${running} running)`);
        await new Promise((r) => setTimeout(r, ms));
        running--;
        events.push(`${name} end`);
        if (fail) throw new Error(`${name} failed`);
        return name;
      });
    const results = await Promise.allSettled([step('a', 20), step('b', 1, true), step('c', 5)]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
      'a',
      'b failed',
      'c',
    ]);
    expect(events).toEqual([
      'a start (1 running)',
      'a end',
      'b start (1 running)',
      'b end',
      'c start (1 running)',
      'c end',
    ]);
  });
});

describe('preloadMismatch (a database the PostgreSQL image preloaded)', () => {
  const dataset = resolveDataset('retail@1');
  const marker: SeedMarker = {
    dataset: 'retail@1',
    size: 'standard',
    variant: 0,
    tables_sha256: 'a'.repeat(64),
    layout: layoutFingerprint(dataset),
    preloaded: true,
  };
  const want = { dataset: 'retail@1', size: 'standard', variant: 0, layout: layoutFingerprint(dataset) };
  const ok = () => 'a'.repeat(64);

  it('accepts the same dataset, size, variant, layout and rows', () => {
    expect(preloadMismatch(marker, { ...want, tables: ok })).toBeUndefined();
  });

  it('names what differs, checking the rows last (reading them may cost a file)', () => {
    let hashed = false;
    const tables = () => {
      hashed = true;
      return 'a'.repeat(64);
    };
    expect(preloadMismatch({ ...marker, dataset: 'retail@2' }, { ...want, tables })).toBe(
      'it holds retail@2, this seed loads retail@1',
    );
    expect(preloadMismatch({ ...marker, size: 'small' }, { ...want, tables })).toBe(
      'it holds the small size, this seed loads standard',
    );
    expect(preloadMismatch({ ...marker, variant: 1000 }, { ...want, tables })).toBe(
      'it holds variant 1000, this seed loads 0',
    );
    expect(preloadMismatch({ ...marker, layout: 'old' }, { ...want, tables })).toMatch(
      /^its tables were made by another DDL or loader \(layout old, this seeder's [0-9a-f]{32}\)$/,
    );
    expect(hashed).toBe(false);
    expect(preloadMismatch(marker, { ...want, tables: () => 'b'.repeat(64) })).toBe(
      "its rows differ from this seeder's (sha256 aaaaaaaaaaaa…, this seeder's bbbbbbbbbbbb…)",
    );
    expect(preloadMismatch({ ...marker, tables_sha256: null }, { ...want, tables })).toMatch(
      /^its rows differ/,
    );
  });

  it("fingerprints the layout from the DDL and the tables' columns", () => {
    const fp = layoutFingerprint(dataset);
    expect(
      layoutFingerprint({ postgres: { ...dataset.postgres, ddl: `${dataset.postgres.ddl}\n-- changed` } }),
    ).not.toBe(fp);
    const tables = dataset.postgres.tables.map((t, i) =>
      i === 0 ? { ...t, columns: t.columns.slice(1) } : t,
    );
    expect(layoutFingerprint({ postgres: { ...dataset.postgres, tables } })).not.toBe(fp);
    expect(layoutFingerprint(resolveDataset('retail'))).toBe(fp);
  });
});
