/** Unit tests for faults.ts: fault decisions and row corruption. */
import { describe, expect, it } from 'vitest';
import { Random } from '../datasets/random.ts';
import { type Corruption, corruptRow, decideFault, type Fault, pickCorruption } from './faults.ts';
import { conforms, data } from './fixtures.test-helpers.ts';
import { RESOURCE_NAMES, RESOURCES, type Row } from './pagination.ts';

describe('decideFault', () => {
  const settings = { rate: 0.3, slowMaxMs: 200 };
  const draw = (seed: number, n: number, s = settings, rows = 10) => {
    const rng = new Random(seed);
    return Array.from({ length: n }, () => decideFault(rng, s, { resource: 'transactions', rows }));
  };

  it('is deterministic for a seed', () => {
    expect(draw(7, 200)).toEqual(draw(7, 200));
    expect(draw(7, 200)).not.toEqual(draw(8, 200));
  });

  it('never fires at rate 0, fires at about the rate otherwise, in every kind', () => {
    expect(draw(1, 1000, { rate: 0, slowMaxMs: 200 }).every((f) => f === null)).toBe(true);
    const faults = draw(1, 4000).filter((f): f is Fault => f !== null);
    expect(faults.length / 4000).toBeGreaterThan(0.27);
    expect(faults.length / 4000).toBeLessThan(0.33);
    expect(new Set(faults.map((f) => (f.kind === 'error' ? f.status : f.kind)))).toEqual(
      new Set([500, 502, 503, 'slow', 'malformed']),
    );
    for (const f of faults) {
      if (f.kind === 'slow') expect(f.delay_ms).toBeGreaterThanOrEqual(100);
      if (f.kind === 'slow') expect(f.delay_ms).toBeLessThanOrEqual(200);
      if (f.kind === 'malformed') {
        const idx = f.rows.map((r) => r.index);
        expect(new Set(idx).size).toBe(idx.length);
        expect(idx.every((i) => i >= 0 && i < 10)).toBe(true);
      }
    }
  });

  it('no slow faults when the maximum delay is 0; no malformed rows on an empty page or one object', () => {
    const kinds = new Set(draw(3, 2000, { rate: 0.5, slowMaxMs: 0 }, 0).map((f) => f?.kind ?? null));
    expect(kinds).toEqual(new Set([null, 'error']));
  });
});

describe('corruptRow', () => {
  it('breaks a copy, never the dataset row; every corruption fails the documented schema', () => {
    const rng = new Random(11);
    for (const resource of RESOURCE_NAMES) {
      const row = data[resource][0] as unknown as Row;
      const before = JSON.stringify(row);
      const hows = new Set<Corruption['how']>();
      for (let i = 0; i < 200; i++) {
        const c = pickCorruption(rng, resource);
        hows.add(c.how);
        const broken = corruptRow(row, c);
        expect(conforms(resource, broken), `${resource} ${JSON.stringify(c)}`).toBe(false);
        expect(broken[RESOURCES[resource]]).toBe(row[RESOURCES[resource]]);
      }
      expect(JSON.stringify(row)).toBe(before);
      expect(hows.has('missing_field') && hows.has('broken_date')).toBe(true);
      if (resource === 'transactions') expect(hows.has('bad_amount')).toBe(true);
    }
  });
});
