/** Unit tests for app.ts: the auth helper, and the whole app driven through `inject`. */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, sameSecret } from './app.ts';
import { conforms, data } from './fixtures.test-helpers.ts';
import {
  buildTable,
  encodeCursor,
  parseTimestamp,
  RESOURCE_NAMES,
  RESOURCES,
  type ResourceName,
  type Row,
} from './pagination.ts';
import type { LoggedRequest } from './request-log.ts';

const KEY = 'unit-test-api-key-0123';
const ADMIN = 'unit-test-admin-key-0123';

describe('sameSecret', () => {
  it('compares whatever the lengths', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abc', 'abcd')).toBe(false);
    expect(sameSecret('', 'abc')).toBe(false);
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

  // A red-team finding: a wrong key on an unknown /v1 path got a 404, which the gateway counts as
  // a logged-in client (its integrity signals, the candidate's connection cap).
  it('checks the key before saying a /v1 path does not exist', async () => {
    const a = app();
    for (const url of ['/v1/nothing', '/v1/merchants/3/more', '/v1']) {
      const wrong = await a.inject({ url, headers: { 'x-api-key': 'wrong-key' } });
      expect(wrong.statusCode, url).toBe(401);
      expect((await a.inject({ url })).statusCode, url).toBe(401);
    }
    expect((await a.inject({ url: '/nothing', headers: { 'x-api-key': 'wrong-key' } })).statusCode).toBe(404);
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

  it('records every authenticated request for reviewers, never with a key, and logs one JSON line each', async () => {
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
    // The wrong-key request is counted, not logged for reviewers; neither is the admin call.
    expect(entries).toHaveLength(22);
    expect(res.json().rejected).toEqual({ missing_key: 0, invalid_key: 1, throttled: 0, anonymous: 0 });
    expect(entries.some((e) => e.path.startsWith('/healthz'))).toBe(false);
    expect(entries[0]).toMatchObject({
      method: 'GET',
      path: '/v1/customers?limit=3&api_key=REDACTED',
      auth: 'ok',
      client: '127.0.0.1',
    });
    expect(entries[1]!.path).toBe('/v1/customers?limit=2&x=REDACTED');
    expect(entries.every((e) => e.auth === 'ok')).toBe(true);
    expect(entries.map((e) => e.seq)).toEqual([...entries.map((e) => e.seq)].sort((x, y) => x - y));
    for (const e of entries)
      expect(Number.isFinite(e.duration_ms) && e.duration_ms >= 0, String(e.duration_ms)).toBe(true);
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

    const since = entries[19]!.time;
    const later = (await a.inject({ url: `/admin/requests?since=${since}&limit=2`, headers: admin })).json()
      .data;
    expect(later.map((e: LoggedRequest) => e.seq)).toEqual([entries[20]!.seq, entries[21]!.seq]);
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

  it('PUT /admin/api-key replaces the candidates’ key at once: the old one is refused, no restart', async () => {
    const a = app();
    const fresh = 'rotated-at-claim-key-0123456';
    expect((await a.inject({ url: '/v1/customers/1', headers: auth })).statusCode).toBe(200);
    // The candidates' key cannot change itself.
    const byCandidate = await a.inject({
      method: 'PUT',
      url: '/admin/api-key',
      headers: auth,
      payload: { key: fresh },
    });
    expect(byCandidate.statusCode).toBe(401);
    const put = await a.inject({
      method: 'PUT',
      url: '/admin/api-key',
      headers: admin,
      payload: { key: fresh },
    });
    expect(put.statusCode).toBe(204);
    expect((await a.inject({ url: '/v1/customers/1', headers: auth })).statusCode).toBe(401);
    expect((await a.inject({ url: '/v1/customers/1', headers: { 'x-api-key': fresh } })).statusCode).toBe(
      200,
    );
    for (const [payload, name] of [
      [{ key: 'short' }, 'key'],
      [{}, 'key'],
      [{ key: fresh, extra: 1 }, 'extra'],
    ] as const) {
      const res = await a.inject({ method: 'PUT', url: '/admin/api-key', headers: admin, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().invalid_params.map((p: { name: string }) => p.name)).toContain(name);
    }
    expect((await a.inject({ url: '/v1/customers/1', headers: { 'x-api-key': fresh } })).statusCode).toBe(
      200,
    );
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
