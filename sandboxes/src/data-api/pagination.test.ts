/** Unit tests for pagination.ts: cursors, timestamps, list query parsing, page selection, tables. */
import { describe, expect, it } from 'vitest';
import {
  buildTable,
  decodeCursor,
  encodeCursor,
  firstAfter,
  type PageRequest,
  parseListQuery,
  parseTimestamp,
  type SortKey,
  selectPage,
} from './pagination.ts';

describe('cursors', () => {
  const key: SortKey = { t: Date.parse('2025-03-04T05:06:07.089Z'), id: 42 };

  it('round-trip, and are opaque base64url', () => {
    const c = encodeCursor('transactions', key);
    expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor('transactions', c)).toEqual({ ok: true, value: key });
  });

  it.each([
    ['not base64url', 'abc!'],
    ['empty', ''],
    ['padded', `${encodeCursor('customers', key)}=`],
    ['garbage', Buffer.from('hello').toString('base64url')],
    ['bad date', Buffer.from('customers|2025-13-45T00:00:00.000Z|1').toString('base64url')],
    ['id 0', Buffer.from('customers|2025-03-04T05:06:07.089Z|0').toString('base64url')],
    ['id not a number', Buffer.from('customers|2025-03-04T05:06:07.089Z|x').toString('base64url')],
    ['extra part', Buffer.from('customers|2025-03-04T05:06:07.089Z|1|2').toString('base64url')],
    ['non-canonical base64', `${encodeCursor('customers', key).slice(0, -1)}_`],
  ])('refuse a malformed cursor (%s)', (_why, cursor) => {
    const res = decodeCursor('customers', cursor);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.reason).toMatch(/^cursor is not valid/);
  });

  it("refuse another resource's cursor, saying whose it is", () => {
    const res = decodeCursor('customers', encodeCursor('accounts', key));
    expect(res).toEqual({ ok: false, reason: expect.stringContaining('it belongs to /v1/accounts') });
  });
});

describe('parseTimestamp', () => {
  it.each([
    ['2025-03-01T00:00:00Z', Date.UTC(2025, 2, 1)],
    ['2025-03-01t00:00:00z', Date.UTC(2025, 2, 1)],
    ['2025-03-01', Date.UTC(2025, 2, 1)],
    ['2025-03-01T01:30:00+01:30', Date.UTC(2025, 2, 1)],
    ['2025-02-28T19:00:00-05:00', Date.UTC(2025, 2, 1)],
    ['2025-03-01 00:00:00.123Z', Date.UTC(2025, 2, 1) + 123],
    ['2025-03-01T00:00:00.1239Z', Date.UTC(2025, 2, 1) + 123], // floored: t > 123.9 ⟺ t > 123 for integer t
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
  ])('%s', (s, ms) => expect(parseTimestamp(s)).toBe(ms));

  it.each([
    'yesterday',
    '',
    '1700000000',
    '2025-02-29T00:00:00Z',
    '2025-02-30',
    '2025-13-01T00:00:00Z',
    '2025-03-01T24:00:00Z',
    '2025-03-01T00:00:00', // no offset: whose local time?
    '2025-03-01T00:00:00 01:00', // a + sent unencoded arrives as a space
    '2025-03-01T00:00Z',
  ])('refuses %j', (s) => expect(parseTimestamp(s)).toBeNull());
});

describe('parseListQuery', () => {
  const ok = (q: string) => {
    const res = parseListQuery(q, 'customers', 100);
    if (!res.ok) throw new Error(JSON.stringify(res.invalid));
    return res.value;
  };
  const names = (q: string) => {
    const res = parseListQuery(q, 'customers', 100);
    return res.ok ? [] : res.invalid.map((i) => i.name);
  };

  it('applies the default page size and reads every parameter', () => {
    expect(ok('')).toEqual({ limit: 100, cursor: null, offset: null, updatedSince: null });
    expect(ok('limit=1000&offset=0&updated_since=2025-01-01T00:00:00Z')).toEqual({
      limit: 1000,
      cursor: null,
      offset: 0,
      updatedSince: Date.UTC(2025, 0, 1),
    });
    const c = encodeCursor('customers', { t: 5, id: 7 });
    expect(ok(`cursor=${c}&limit=1`).cursor).toEqual({ t: 5, id: 7 });
  });

  it.each([
    ['limit=0', ['limit']],
    ['limit=1001', ['limit']],
    ['limit=abc', ['limit']],
    ['limit=', ['limit']],
    ['limit=1.5', ['limit']],
    ['limit=-1', ['limit']],
    ['offset=-1', ['offset']],
    ['offset=x', ['offset']],
    ['cursor=%%%', ['cursor']],
    ['cursor=', ['cursor']],
    [`cursor=${encodeCursor('customers', { t: 1, id: 1 })}&offset=0`, ['offset']],
    ['updated_since=yesterday', ['updated_since']],
    ['updated_since=2025-01-01T00:00:00+01:00', ['updated_since']],
    ['limit=5&limit=6', ['limit']],
    ['page=2', ['page']],
    ['limit=0&offset=-1', ['limit', 'offset']],
  ])('%s → 400 naming %j', (q, expected) => expect(names(q)).toEqual(expected));

  it('explains the + that arrived as a space', () => {
    const res = parseListQuery('updated_since=2025-01-01T00:00:00+01:00', 'customers', 100);
    expect(!res.ok && res.invalid[0]!.reason).toMatch(/%2B/);
  });
});

describe('selectPage', () => {
  // Ties on updated_at on purpose: the id breaks them, or a cursor would skip or repeat rows.
  const keys: SortKey[] = [];
  for (let i = 0; i < 53; i++) keys.push({ t: 1000 + Math.floor(i / 4) * 10, id: 100 - i });
  keys.sort((a, b) => a.t - b.t || a.id - b.id);
  const q = (over: Partial<PageRequest>): PageRequest => ({
    limit: 10,
    cursor: null,
    offset: null,
    updatedSince: null,
    ...over,
  });

  it('firstAfter is the first strictly greater key', () => {
    expect(firstAfter(keys, { t: 0, id: 0 })).toBe(0);
    expect(firstAfter(keys, keys[5]!)).toBe(6);
    expect(firstAfter(keys, keys[52]!)).toBe(53);
    expect(firstAfter(keys, { t: 1000, id: Number.POSITIVE_INFINITY })).toBe(4);
  });

  it.each([1, 3, 4, 10, 52, 53, 1000])('walking with cursors (limit %i) visits every row once', (limit) => {
    const seen: number[] = [];
    let cursor: SortKey | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const s = selectPage(keys, q({ limit, cursor }));
      for (let i = s.start; i < s.end; i++) seen.push(i);
      if (!s.next) break;
      cursor = s.next;
    }
    expect(seen).toEqual(keys.map((_, i) => i));
  });

  it('offset pages carry total and the next offset; past the end is empty', () => {
    expect(selectPage(keys, q({ offset: 0 }))).toEqual({
      start: 0,
      end: 10,
      next: keys[9],
      total: 53,
      nextOffset: 10,
    });
    expect(selectPage(keys, q({ offset: 50 }))).toEqual({
      start: 50,
      end: 53,
      next: null,
      total: 53,
      nextOffset: null,
    });
    expect(selectPage(keys, q({ offset: 500 }))).toEqual({
      start: 53,
      end: 53,
      next: null,
      total: 53,
      nextOffset: null,
    });
  });

  it('updated_since keeps rows strictly after it, with cursor and with offset', () => {
    const since = 1020; // rows 8.. have t ≥ 1020; t > 1020 starts at row 12
    expect(selectPage(keys, q({ updatedSince: since, limit: 100 }))).toMatchObject({ start: 12, end: 53 });
    expect(selectPage(keys, q({ updatedSince: since, offset: 5 }))).toMatchObject({
      start: 17,
      end: 27,
      total: 41,
    });
    // A cursor before the filter does not bring filtered rows back.
    expect(selectPage(keys, q({ updatedSince: since, cursor: keys[0]! }))).toMatchObject({ start: 12 });
  });

  it('the last full page has no next cursor', () => {
    expect(selectPage(keys, q({ limit: 53 })).next).toBeNull();
    expect(selectPage([], q({})).next).toBeNull();
  });
});

describe('buildTable', () => {
  it('orders by parsed updated_at then id (the strings mix precisions, so text order is wrong)', () => {
    const t = buildTable('merchants', [
      { merchant_id: 2, updated_at: '2025-01-01T00:00:00Z' },
      { merchant_id: 1, updated_at: '2025-01-01T00:00:00.500Z' },
      { merchant_id: 3, updated_at: '2025-01-01T00:00:00Z' },
    ]);
    expect(t.rows.map((r) => r.merchant_id)).toEqual([2, 3, 1]);
    expect(t.byId.get(1)).toBe(t.rows[2]);
  });
});
