import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveDataset } from '../datasets/catalog.ts';
import { Random } from '../datasets/random.ts';
import {
  buildApp,
  buildTable,
  type Corruption,
  configFromEnv,
  corruptRow,
  DEFAULTS,
  decideFault,
  decodeCursor,
  encodeCursor,
  type Fault,
  firstAfter,
  type LoggedRequest,
  openApiDocument,
  type PageRequest,
  parseListQuery,
  parseTimestamp,
  pickCorruption,
  RESOURCE_NAMES,
  RESOURCES,
  type ResourceName,
  RingBuffer,
  ROW_SCHEMAS,
  type Row,
  redactUrl,
  type SortKey,
  sameSecret,
  selectPage,
  takeToken,
} from './app.ts';

const data = resolveDataset('retail@1').generate('small');
const KEY = 'unit-test-api-key-0123';
const ADMIN = 'unit-test-admin-key-0123';

/** A client-side check of a row against the documented schema, as a careful candidate would. */
function conforms(resource: ResourceName, row: Row): boolean {
  const schema = ROW_SCHEMAS[resource];
  if (Object.keys(row).sort().join() !== Object.keys(schema).sort().join()) return false;
  return Object.entries(schema).every(([field, s]) => {
    const v = row[field];
    const types = ([] as unknown[]).concat(s.type);
    if (v === null) return types.includes('null');
    if (types.includes('integer')) return Number.isInteger(v);
    if (typeof v !== 'string') return false;
    if (s.format === 'date-time' && parseTimestamp(v) === null) return false;
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern).test(v)) return false;
    if (Array.isArray(s.enum) && !s.enum.includes(v)) return false;
    return true;
  });
}

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

describe('takeToken (token bucket)', () => {
  it('allows a burst of `limit`, then refuses with Retry-After until a token refills', () => {
    let b: ReturnType<typeof takeToken>['bucket'] | undefined;
    for (let i = 0; i < 60; i++) {
      const d = takeToken(b, 0, 60);
      expect(d.allowed).toBe(true);
      expect(d.remaining).toBe(59 - i);
      b = d.bucket;
    }
    const refused = takeToken(b, 0, 60);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfter: 1, reset: 60 });
    expect(takeToken(b, 400, 60)).toMatchObject({ allowed: false, retryAfter: 1 });
    expect(takeToken(b, 1000, 60)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('Retry-After is whole seconds, at least 1', () => {
    const empty = { tokens: 0, at: 0 };
    expect(takeToken(empty, 0, 3).retryAfter).toBe(20);
    expect(takeToken(empty, 0, 100_000).retryAfter).toBe(1);
  });

  it('never holds more than the limit however long the key was idle', () => {
    expect(takeToken({ tokens: 0, at: 0 }, 86_400_000, 10).remaining).toBe(9);
  });
});

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

describe('RingBuffer', () => {
  it('keeps the last `capacity` items, oldest first', () => {
    const r = new RingBuffer<number>(3);
    expect(r.toArray()).toEqual([]);
    for (let i = 1; i <= 2; i++) r.push(i);
    expect(r.toArray()).toEqual([1, 2]);
    for (let i = 3; i <= 7; i++) r.push(i);
    expect(r.toArray()).toEqual([5, 6, 7]);
  });
});

describe('redactUrl', () => {
  it('hides secret-looking parameters and any known secret', () => {
    expect(redactUrl('/v1/x?limit=5&api_key=abc&Token=def', [])).toBe(
      '/v1/x?limit=5&api_key=REDACTED&Token=REDACTED',
    );
    expect(redactUrl('/v1/x?q=s3cr%2Ft&k=s3cr/t', ['s3cr/t'])).toBe('/v1/x?q=REDACTED&k=REDACTED');
    expect(redactUrl('/v1/customers?cursor=abc', ['secret'])).toBe('/v1/customers?cursor=abc');
  });
});

describe('sameSecret', () => {
  it('compares whatever the lengths', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abc', 'abcd')).toBe(false);
    expect(sameSecret('', 'abc')).toBe(false);
  });
});

describe('configFromEnv', () => {
  it('applies the defaults', () => {
    const res = configFromEnv({ API_KEY: 'k'.repeat(32), FAULT_SEED: '5' });
    expect(res).toEqual({
      ok: true,
      value: {
        ...DEFAULTS,
        apiKey: 'k'.repeat(32),
        faultSeed: 5,
        port: 8080,
        host: '0.0.0.0',
        logLevel: 'info',
      },
    });
  });

  it('reads every variable', () => {
    const res = configFromEnv({
      API_KEY: 'k'.repeat(32),
      ADMIN_KEY: 'a'.repeat(32),
      DATASET: 'retail',
      DATASET_SIZE: 'small',
      PAGE_SIZE: '250',
      RATE_LIMIT_PER_MINUTE: '600',
      FAULT_RATE: '0.25',
      FAULT_SLOW_MAX_MS: '50',
      PORT: '0',
      HOST: '127.0.0.1',
    });
    expect(res.ok && res.value).toMatchObject({
      dataset: 'retail',
      size: 'small',
      pageSize: 250,
      rateLimitPerMinute: 600,
      faultRate: 0.25,
      faultSlowMaxMs: 50,
      adminKey: 'a'.repeat(32),
      port: 0,
      host: '127.0.0.1',
    });
  });

  it.each([
    [{ API_KEY: '' }, /^API_KEY: required/],
    [{ API_KEY: 'short' }, /^API_KEY: must be at least 8/],
    [{ PAGE_SIZE: 'abc' }, /^PAGE_SIZE: must be an integer between 1 and 1000/],
    [{ PAGE_SIZE: '1001' }, /^PAGE_SIZE: must be between 1 and 1000/],
    [{ FAULT_RATE: '0.6' }, /^FAULT_RATE: must be between 0 and 0.5/],
    [{ FAULT_RATE: '-0.1' }, /^FAULT_RATE: must be a number between 0 and 0.5/],
    [{ RATE_LIMIT_PER_MINUTE: '0' }, /^RATE_LIMIT_PER_MINUTE: must be between 1 and 100000/],
    [{ DATASET: 'retail@9' }, /^DATASET: unknown dataset "retail@9"/],
    [{ DATASET_SIZE: 'huge' }, /^DATASET_SIZE: must be small or standard/],
    [{ PORT: '70000' }, /^PORT: /],
  ])('%j → names the variable', (env, message) => {
    const res = configFromEnv({ API_KEY: 'k'.repeat(32), ...env });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.reason).toMatch(message);
  });

  it('requires API_KEY', () => {
    expect(configFromEnv({})).toEqual({ ok: false, reason: expect.stringMatching(/^API_KEY: required/) });
  });

  it('never echoes a key', () => {
    const res = configFromEnv({ API_KEY: 'tiny', ADMIN_KEY: 'mini' });
    expect(!res.ok && res.reason).not.toMatch(/tiny|mini/);
  });
});

describe('the dataset matches the documented schema', () => {
  it.each(RESOURCE_NAMES)('%s', (resource) => {
    const rows = data[resource] as unknown as Row[];
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.filter((r) => !conforms(resource, r))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The app, through inject

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
function app(
  config: Partial<Parameters<typeof buildApp>[0]> = {},
  options: Parameters<typeof buildApp>[1] = {},
) {
  const a = buildApp(
    { apiKey: KEY, adminKey: ADMIN, rateLimitPerMinute: 100_000, ...config },
    { data, ...options },
  );
  apps.push(a);
  return a;
}
const auth = { 'x-api-key': KEY };

interface Stats {
  requests: number;
  errors: number;
  malformed: number;
}

/** A careful client: retries 5xx and 429, and re-fetches a page whose rows do not validate. */
async function fetchPage(a: FastifyInstance, resource: ResourceName, url: string, stats: Stats) {
  for (let attempt = 1; attempt <= 10; attempt++) {
    stats.requests++;
    const res = await a.inject({ url, headers: auth });
    if (res.statusCode === 429 || res.statusCode >= 500) {
      stats.errors++;
      continue;
    }
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as {
      data: Row[];
      next_cursor: string | null;
      total?: number;
      next_offset?: number | null;
    };
    if (!body.data.every((r) => conforms(resource, r))) {
      stats.malformed++;
      continue;
    }
    return body;
  }
  throw new Error(`${url}: no good answer in 10 attempts`);
}

async function walk(
  a: FastifyInstance,
  resource: ResourceName,
  mode: 'cursor' | 'offset',
  extra = '',
  stats: Stats,
) {
  const rows: Row[] = [];
  let cursor: string | null = null;
  let offset = 0;
  for (let page = 0; page < 500; page++) {
    const pos = mode === 'cursor' ? (cursor ? `&cursor=${cursor}` : '') : `&offset=${offset}`;
    const body = await fetchPage(a, resource, `/v1/${resource}?limit=17${extra}${pos}`, stats);
    rows.push(...body.data);
    if (mode === 'cursor') {
      if (!body.next_cursor) return rows;
      cursor = body.next_cursor;
    } else {
      if (body.next_offset === null) return rows;
      offset = body.next_offset!;
    }
  }
  throw new Error('more than 500 pages');
}

const byId = (resource: ResourceName, rows: readonly unknown[]) =>
  [...(rows as Row[])].sort((x, y) => Number(x[RESOURCES[resource]]) - Number(y[RESOURCES[resource]]));

describe('data endpoints', () => {
  it.each(['cursor', 'offset'] as const)(
    'walking every page (%s) with faults on yields every row exactly once, unchanged',
    async (mode) => {
      const a = app({ faultRate: 0.3, faultSeed: 42, faultSlowMaxMs: 4 });
      const stats: Stats = { requests: 0, errors: 0, malformed: 0 };
      for (const resource of RESOURCE_NAMES) {
        const rows = await walk(a, resource, mode, '', stats);
        const ids = rows.map((r) => r[RESOURCES[resource]]);
        expect(new Set(ids).size, 'no duplicates').toBe(ids.length);
        expect(byId(resource, rows)).toEqual(byId(resource, data[resource]));
      }
      // The faults really happened (deterministic for seed 42).
      expect(stats.errors).toBeGreaterThan(5);
      expect(stats.malformed).toBeGreaterThan(5);
      // And the dataset was not damaged by them: a clean walk still matches.
      const clean = app();
      expect(byId('transactions', await walk(clean, 'transactions', 'cursor', '', stats))).toEqual(
        byId('transactions', data.transactions),
      );
    },
  );

  it('updated_since returns exactly the rows updated after it (both pagination styles)', async () => {
    const a = app({ faultRate: 0.2, faultSeed: 3, faultSlowMaxMs: 2 });
    const stats: Stats = { requests: 0, errors: 0, malformed: 0 };
    for (const since of ['2025-03-15T12:00:00Z', '2025-03-15T13:00:00+01:00', '2030-01-01']) {
      const t = parseTimestamp(since)!;
      const expected = byId(
        'transactions',
        data.transactions.filter((r) => Date.parse(r.updated_at) > t),
      );
      const q = `&updated_since=${encodeURIComponent(since)}`;
      expect(byId('transactions', await walk(a, 'transactions', 'cursor', q, stats))).toEqual(expected);
      expect(byId('transactions', await walk(a, 'transactions', 'offset', q, stats))).toEqual(expected);
    }
    const first = await fetchPage(
      a,
      'customers',
      '/v1/customers?offset=0&updated_since=2024-06-01T00:00:00Z',
      stats,
    );
    expect(first.total).toBe(
      data.customers.filter((r) => Date.parse(r.updated_at) > Date.UTC(2024, 5, 1)).length,
    );
  });

  it('serves pages in (updated_at, id) order, at the default page size, with total only for offset', async () => {
    const a = app({ pageSize: 25 });
    const body = (await a.inject({ url: '/v1/accounts', headers: auth })).json();
    expect(body.data).toHaveLength(25);
    expect(body.total).toBeUndefined();
    expect(body.next_cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    const keys = body.data.map((r: Row) => [Date.parse(String(r.updated_at)), r.account_id]);
    expect(keys).toEqual([...keys].sort((x, y) => x[0] - y[0] || x[1] - y[1]));
    const offset = (await a.inject({ url: '/v1/accounts?offset=0', headers: auth })).json();
    expect(offset).toMatchObject({ total: data.accounts.length, next_offset: 25 });
    expect(offset.data).toEqual(body.data);
  });

  it('a retried page with malformed rows comes back intact, with the same next cursor', async () => {
    // Seed 9 at rate 0.5 makes the first three answers malformed (see decideFault's sequence).
    const a = app({ faultRate: 0.5, faultSeed: 9, faultSlowMaxMs: 0 });
    const url = '/v1/transactions?limit=50';
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await a.inject({ url, headers: auth }));
    const expected = buildTable('transactions', data.transactions as unknown as Row[]).rows.slice(0, 50);
    const valid = answers.map((r) => r.json().data.every((x: Row) => conforms('transactions', x)));
    // At most 3 faults in a row for the same request, so the 4th answer is clean.
    expect(valid).toEqual([false, false, false, true]);
    for (const r of answers.slice(0, 3)) {
      const rows = r.json().data as Row[];
      expect(rows).toHaveLength(50);
      // The broken rows are copies in place of the real ones; the rest are untouched.
      const same = rows.filter((x, i) => JSON.stringify(x) === JSON.stringify(expected[i]));
      expect(same.length).toBeGreaterThanOrEqual(47);
      expect(rows.map((x) => x.transaction_id)).toEqual(expected.map((x) => x.transaction_id));
    }
    expect(answers[3]!.json().data).toEqual(expected);
    expect(new Set(answers.map((r) => r.json().next_cursor)).size).toBe(1);
    expect(answers.every((r) => r.statusCode === 200)).toBe(true);
  });

  it('one object by id; 404 when absent, 400 when the id is not one', async () => {
    const a = app();
    const res = await a.inject({ url: '/v1/merchants/3', headers: auth });
    expect(res.json()).toEqual(data.merchants.find((m) => m.merchant_id === 3));
    const missing = await a.inject({ url: '/v1/merchants/99999', headers: auth });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(missing.json()).toMatchObject({
      type: 'about:blank',
      title: 'Not Found',
      status: 404,
      detail: 'merchant 99999 not found',
    });
    const bad = await a.inject({ url: '/v1/merchants/abc', headers: auth });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().invalid_params).toEqual([{ name: 'id', reason: 'id must be a positive integer' }]);
    expect((await a.inject({ url: '/v1/nothing', headers: auth })).statusCode).toBe(404);
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1001', 'limit'],
    ['offset=-1', 'offset'],
    [`cursor=${encodeCursor('customers', { t: 1, id: 1 })}&offset=3`, 'offset'],
    ['cursor=not-a-cursor', 'cursor'],
    ['updated_since=not-a-date', 'updated_since'],
    ['page=2', 'page'],
  ])('%s → 400 problem+json naming %s', async (q, name) => {
    const res = await app().inject({ url: `/v1/customers?${q}`, headers: auth });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json();
    expect(body).toMatchObject({ type: 'about:blank', title: 'Bad Request', status: 400 });
    expect(body.invalid_params.map((p: { name: string }) => p.name)).toContain(name);
    expect(body.detail).toContain(name);
  });
});

describe('auth', () => {
  it('401 problem+json without a key or with a wrong one; both header styles work', async () => {
    const a = app();
    for (const headers of [
      {},
      { 'x-api-key': 'wrong' },
      { authorization: 'Bearer wrong' },
      { authorization: KEY },
    ]) {
      const res = await a.inject({ url: '/v1/customers', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="data-api"');
      expect(res.body).not.toContain(KEY);
    }
    expect(
      (await a.inject({ url: '/v1/customers/1', headers: { authorization: `Bearer ${KEY}` } })).statusCode,
    ).toBe(200);
    expect((await a.inject({ url: '/v1/customers/1', headers: { 'x-api-key': KEY } })).statusCode).toBe(200);
  });

  it('/healthz, /openapi.json and /docs need no key', async () => {
    const a = app();
    expect((await a.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok', dataset: 'retail@1' });
    const doc = (await a.inject({ url: '/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    const docs = await a.inject({ url: '/docs' });
    expect(docs.headers['content-type']).toMatch(/^text\/html/);
    for (const path of Object.keys(doc.paths)) expect(docs.body).toContain(path);
    expect(docs.body).not.toMatch(/<script|https?:\/\/(?!.*example)/);
  });
});

describe('OpenAPI document', () => {
  it('describes every endpoint and parameter', () => {
    const doc = openApiDocument({ ...DEFAULTS, adminKey: 'x' });
    for (const r of RESOURCE_NAMES) {
      const list = (
        doc.paths[`/v1/${r}`] as { get: { parameters: Array<{ $ref: string }>; responses: object } }
      ).get;
      expect(list.parameters.map((p) => p.$ref.split('/').pop())).toEqual([
        'cursor',
        'offset',
        'limit',
        'updated_since',
      ]);
      expect(Object.keys(list.responses)).toEqual(
        expect.arrayContaining(['200', '400', '401', '429', '500', '502', '503']),
      );
      expect(doc.paths[`/v1/${r}/{id}`]).toBeDefined();
    }
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/healthz', '/openapi.json', '/docs', '/admin/requests', '/admin/faults']),
    );
    // Without an admin key the admin endpoints do not exist, so they are not documented.
    expect(Object.keys(openApiDocument(DEFAULTS).paths).some((p) => p.startsWith('/admin'))).toBe(false);
  });
});

describe('rate limiting', () => {
  it('429 with Retry-After and RateLimit headers once the allowance is spent; back after the wait', async () => {
    let now = 1_000_000;
    const a = app({ rateLimitPerMinute: 3 }, { clock: () => now });
    for (let i = 0; i < 3; i++) {
      const res = await a.inject({ url: '/v1/customers/1', headers: auth });
      expect(res.statusCode).toBe(200);
      expect(res.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': String(2 - i) });
    }
    const limited = await a.inject({ url: '/v1/customers/1', headers: auth });
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.headers['retry-after']).toBe('20');
    expect(limited.headers).toMatchObject({ 'ratelimit-remaining': '0', 'ratelimit-reset': '60' });
    expect(limited.json()).toMatchObject({ status: 429, title: 'Too Many Requests' });
    now += 19_000;
    expect((await a.inject({ url: '/v1/customers/1', headers: auth })).headers['retry-after']).toBe('1');
    now += 1_000;
    expect((await a.inject({ url: '/v1/customers/1', headers: auth })).statusCode).toBe(200);
    // Public endpoints are not counted.
    expect((await a.inject({ url: '/openapi.json' })).statusCode).toBe(200);
  });
});

describe('request log and admin', () => {
  const admin = { 'x-admin-key': ADMIN };

  it('records every request but /healthz, never with a key, and logs one JSON line each', async () => {
    const lines: string[] = [];
    let now = Date.UTC(2025, 5, 1);
    const a = app(
      { faultRate: 0.5, faultSeed: 9, faultSlowMaxMs: 1 },
      { logger: { level: 'info', stream: { write: (l: string) => lines.push(l) } }, clock: () => now++ },
    );
    await a.inject({ url: '/healthz' });
    await a.inject({ url: `/v1/customers?limit=3&api_key=${KEY}`, headers: auth });
    await a.inject({
      url: `/v1/customers?limit=2&x=${encodeURIComponent(KEY)}`,
      headers: { authorization: `Bearer ${KEY}` },
    });
    await a.inject({ url: '/v1/customers', headers: { 'x-api-key': `${KEY}x` } });
    for (let i = 0; i < 20; i++)
      await a.inject({ url: `/v1/transactions?limit=5&offset=${i * 5}`, headers: auth });
    const res = await a.inject({ url: '/admin/requests', headers: admin });
    expect(res.statusCode).toBe(200);
    const entries = res.json().data as LoggedRequest[];
    expect(entries).toHaveLength(23);
    expect(entries.some((e) => e.path.startsWith('/healthz'))).toBe(false);
    expect(entries[0]).toMatchObject({
      method: 'GET',
      path: '/v1/customers?limit=3&api_key=REDACTED',
      auth: 'ok',
      client: '127.0.0.1',
    });
    expect(entries[1]!.path).toBe('/v1/customers?limit=2&x=REDACTED');
    expect(entries[2]).toMatchObject({ status: 401, auth: 'invalid' });
    expect(entries.map((e) => e.seq)).toEqual([...entries.map((e) => e.seq)].sort((x, y) => x - y));
    for (const e of entries) expect(e.duration_ms).toBeGreaterThanOrEqual(0);
    const faulted = entries.filter((e) => e.fault);
    expect(faulted.length).toBeGreaterThan(3);
    for (const e of faulted) {
      if (e.fault!.kind === 'error') expect(e.status).toBe(e.fault!.status);
      if (e.fault!.kind === 'malformed') expect(e.fault!.rows[0]).toHaveProperty('id');
    }
    const requestLines = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
    expect(requestLines.length).toBe(24); // the admin call itself is logged too
    expect(requestLines[1]).toMatchObject({
      level: 30,
      method: 'GET',
      path: '/v1/customers?limit=2&x=REDACTED',
    });
    expect(lines.join('\n')).not.toContain(KEY);
    expect(res.body).not.toContain(KEY);

    const since = entries[20]!.time;
    const later = (await a.inject({ url: `/admin/requests?since=${since}&limit=2`, headers: admin })).json()
      .data;
    expect(later.map((e: LoggedRequest) => e.seq)).toEqual([entries[22]!.seq, entries[22]!.seq + 1]);
    const bad = await a.inject({ url: '/admin/requests?since=soon&limit=0', headers: admin });
    expect(bad.json().invalid_params.map((p: { name: string }) => p.name)).toEqual(['since', 'limit']);
  });

  it('keeps the last REQUEST_LOG_SIZE entries', async () => {
    const a = app({ requestLogSize: 5 });
    for (let i = 0; i < 9; i++) await a.inject({ url: `/v1/customers/${i + 1}`, headers: auth });
    const entries = (await a.inject({ url: '/admin/requests', headers: admin })).json().data;
    expect(entries.map((e: LoggedRequest) => e.path)).toEqual(
      [5, 6, 7, 8, 9].map((i) => `/v1/customers/${i}`),
    );
  });

  it('admin endpoints need the admin key (not the API key), and are 404 without ADMIN_KEY', async () => {
    const a = app();
    for (const headers of [{}, auth, { authorization: `Bearer ${KEY}` }]) {
      expect((await a.inject({ url: '/admin/requests', headers })).statusCode).toBe(401);
    }
    expect(
      (await a.inject({ url: '/admin/requests', headers: { authorization: `Bearer ${ADMIN}` } })).statusCode,
    ).toBe(200);
    const off = app({ adminKey: undefined });
    expect((await off.inject({ url: '/admin/requests', headers: admin })).statusCode).toBe(404);
    expect(
      (await off.inject({ method: 'POST', url: '/admin/faults', headers: admin, payload: { rate: 0.1 } }))
        .statusCode,
    ).toBe(404);
  });

  it('POST /admin/faults switches faults at runtime; bad settings are a 400 naming the field', async () => {
    const a = app();
    const all = async () => {
      const statuses = [];
      for (let i = 0; i < 30; i++)
        statuses.push((await a.inject({ url: `/v1/customers/${i + 1}`, headers: auth })).statusCode);
      return statuses;
    };
    expect((await all()).every((s) => s === 200)).toBe(true);
    const on = await a.inject({
      method: 'POST',
      url: '/admin/faults',
      headers: admin,
      payload: { rate: 0.5, slow_max_ms: 0, seed: 4 },
    });
    expect(on.json()).toEqual({ rate: 0.5, slow_max_ms: 0, seed: 4 });
    expect((await all()).filter((s) => s >= 500).length).toBeGreaterThan(5);
    expect((await a.inject({ url: '/admin/faults', headers: admin })).json()).toEqual({
      rate: 0.5,
      slow_max_ms: 0,
      seed: 4,
    });
    await a.inject({ method: 'POST', url: '/admin/faults', headers: admin, payload: { rate: 0 } });
    expect((await all()).every((s) => s === 200)).toBe(true);

    for (const [payload, name] of [
      [{ rate: 0.9 }, 'rate'],
      [{ rate: 'lots' }, 'rate'],
      [{}, 'rate'],
      [{ rate: 0.1, colour: 'red' }, 'colour'],
    ] as const) {
      const res = await a.inject({ method: 'POST', url: '/admin/faults', headers: admin, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().invalid_params.map((p: { name: string }) => p.name)).toContain(name);
    }
    const notJson = await a.inject({
      method: 'POST',
      url: '/admin/faults',
      headers: { ...admin, 'content-type': 'application/json' },
      payload: '{oops',
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.headers['content-type']).toMatch(/^application\/problem\+json/);
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
