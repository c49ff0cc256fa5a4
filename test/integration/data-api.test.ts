import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DATA_API_VARIANT } from '@epreuve/crds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { freePort } from '../../hack/cluster/supervisor.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { writePrebuilt } from '../../sandboxes/src/datasets/prebuilt.ts';
import { DATA_API_MAIN, DataApiProcess } from '../harness/data-api.ts';

/**
 * The data API as candidates meet it: the real process (node sandboxes/src/data-api/main.ts) on a
 * random loopback port, spoken to over HTTP with fetch by a client that does what a good
 * candidate's does — retries 5xx and 429 honouring Retry-After, validates every row and
 * re-fetches a page with malformed ones. Every loop is bounded in count and time.
 */
const API_KEY = 'it-api-key-7f3a9c2e5b1d';
const ADMIN_KEY = 'it-admin-key-4e8b0d6a2c9f';
// The data API serves its own variant of the dataset, not the warehouse's.
const data = resolveDataset('retail@1').generate('small', DATA_API_VARIANT);
const RESOURCES = ['customers', 'accounts', 'merchants', 'transactions'] as const;
type Resource = (typeof RESOURCES)[number];
const ID = {
  customers: 'customer_id',
  accounts: 'account_id',
  merchants: 'merchant_id',
  transactions: 'transaction_id',
} as const;
type Row = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// A careful client

const timestamp = z.string().refine((v) => {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/.test(v)) return false;
  const t = Date.parse(v);
  // Date.parse rolls 2025-02-30 over to March; a real timestamp survives the round trip.
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 19) === v.slice(0, 19);
}, 'not a timestamp');
const id = z.number().int().positive();
const SCHEMAS: Record<Resource, z.ZodType> = {
  customers: z.strictObject({
    customer_id: id,
    first_name: z.string().min(1),
    last_name: z.string().min(1),
    email: z.string().nullable(),
    country: z.string().length(2),
    city: z.string(),
    timezone: z.string(),
    segment: z.enum(['retail', 'premium', 'business']),
    created_at: timestamp,
    updated_at: timestamp,
  }),
  accounts: z.strictObject({
    account_id: id,
    customer_id: id,
    iban: z.string().min(1),
    type: z.enum(['checking', 'savings', 'card']),
    currency: z.string().length(3),
    opened_at: timestamp,
    closed_at: timestamp.nullable(),
    updated_at: timestamp,
  }),
  merchants: z.strictObject({
    merchant_id: id,
    name: z.string().min(1),
    category: z.string().nullable(),
    country: z.string().length(2),
    updated_at: timestamp,
  }),
  transactions: z.strictObject({
    transaction_id: id,
    account_id: id,
    merchant_id: id.nullable(),
    counterparty_account_id: id.nullable(),
    kind: z.enum(['card', 'transfer', 'fee', 'refund', 'salary']),
    direction: z.enum(['debit', 'credit']),
    amount: z.string().regex(/^\d+\.\d{2}$/),
    currency: z.string().length(3),
    booked_at: timestamp,
    ingested_at: timestamp,
    reference: z.string().min(1),
    updated_at: timestamp,
  }),
};

interface Stats {
  requests: number;
  retried: Record<string, number>; // by status
  retryAfter: number[];
  malformedPages: number;
}
const newStats = (): Stats => ({ requests: 0, retried: {}, retryAfter: [], malformedPages: 0 });

const RETRY_CAP_MS = 25; // a real client would wait the full Retry-After; tests cap it
const MAX_ATTEMPTS = 12;

async function get(url: string, headers: Record<string, string> = { 'x-api-key': API_KEY }) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** GET with retries on 5xx/429 (Retry-After, else exponential backoff), bounded. */
async function getRetrying(url: string, stats: Stats) {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    stats.requests++;
    const res = await get(url);
    if (res.status !== 429 && res.status < 500) return res;
    stats.retried[res.status] = (stats.retried[res.status] ?? 0) + 1;
    const retryAfter = res.headers.get('retry-after');
    if (retryAfter !== null) stats.retryAfter.push(Number(retryAfter));
    const waitMs = retryAfter !== null ? Number(retryAfter) * 1000 : 5 * 2 ** attempt;
    await sleep(Math.min(RETRY_CAP_MS, waitMs));
  }
  throw new Error(`${url}: still failing after ${MAX_ATTEMPTS} attempts`);
}

interface Page {
  data: Row[];
  next_cursor: string | null;
  total?: number;
  next_offset?: number | null;
}

/** A page whose every row validates; a page with a malformed row is fetched again. */
async function getPage(base: string, resource: Resource, query: string, stats: Stats): Promise<Page> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const res = await getRetrying(`${base}/v1/${resource}?${query}`, stats);
    expect(res.status, res.body).toBe(200);
    const page = JSON.parse(res.body) as Page;
    if (page.data.every((row) => SCHEMAS[resource].safeParse(row).success)) return page;
    stats.malformedPages++;
  }
  throw new Error(`${resource}?${query}: malformed after ${MAX_ATTEMPTS} attempts`);
}

async function walk(
  base: string,
  resource: Resource,
  mode: 'cursor' | 'offset',
  extra: string,
  stats: Stats,
) {
  const rows: Row[] = [];
  let cursor: string | null = null;
  let offset = 0;
  const deadline = Date.now() + 30_000;
  for (let pages = 0; pages < 1000 && Date.now() < deadline; pages++) {
    const position = mode === 'cursor' ? (cursor ? `cursor=${cursor}` : '') : `offset=${offset}&limit=37`;
    const page = await getPage(base, resource, [position, extra].filter(Boolean).join('&'), stats);
    rows.push(...page.data);
    if (mode === 'cursor') {
      if (page.next_cursor === null) return rows;
      cursor = page.next_cursor;
    } else {
      expect(page.total).toBeTypeOf('number');
      if (page.next_offset === null) return rows;
      offset = page.next_offset!;
    }
  }
  throw new Error(`walking ${resource} did not finish (1000 pages or 30 s)`);
}

const sortById = (resource: Resource, rows: readonly unknown[]) =>
  [...(rows as Row[])].sort((a, b) => Number(a[ID[resource]]) - Number(b[ID[resource]]));

function expectExactlyOnce(resource: Resource, got: Row[], expected: readonly unknown[]) {
  const ids = got.map((r) => r[ID[resource]]);
  expect(new Set(ids).size, `${resource}: a row came twice`).toBe(ids.length);
  expect(sortById(resource, got)).toEqual(sortById(resource, expected));
}

// ---------------------------------------------------------------------------------------------

describe('data API over HTTP with faults on', () => {
  const server = new DataApiProcess();
  beforeAll(async () => {
    await server.start({
      API_KEY,
      ADMIN_KEY,
      PAGE_SIZE: '20',
      RATE_LIMIT_PER_MINUTE: '100000',
      FAULT_RATE: '0.3',
      FAULT_SEED: '2025',
      FAULT_SLOW_MAX_MS: '30',
    });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('walking every page with cursors yields every row exactly once, unchanged', async () => {
    const stats = newStats();
    for (const resource of RESOURCES) {
      expectExactlyOnce(resource, await walk(server.url, resource, 'cursor', '', stats), data[resource]);
    }
    // The faults really happened, and the client got through them.
    expect(Object.keys(stats.retried).length).toBeGreaterThanOrEqual(2);
    expect(stats.malformedPages).toBeGreaterThan(0);
    expect(stats.retryAfter.every((s) => Number.isInteger(s) && s >= 1)).toBe(true);
  });

  it('walking every page with offsets yields every row exactly once, unchanged', async () => {
    const stats = newStats();
    for (const resource of RESOURCES) {
      expectExactlyOnce(resource, await walk(server.url, resource, 'offset', '', stats), data[resource]);
    }
    expect(stats.malformedPages + Object.keys(stats.retried).length).toBeGreaterThan(0);
  });

  it('updated_since returns exactly the rows updated after it; an incremental load then finds nothing new', async () => {
    const stats = newStats();
    for (const since of ['2025-04-01T00:00:00Z', '2025-04-01T02:00:00+02:00', '2025-06-15T08:30:00.250Z']) {
      const t = Date.parse(since);
      const expected = data.transactions.filter((r) => Date.parse(r.updated_at) > t);
      expect(expected.length).toBeGreaterThan(0);
      const q = `updated_since=${encodeURIComponent(since)}`;
      expectExactlyOnce('transactions', await walk(server.url, 'transactions', 'cursor', q, stats), expected);
      expectExactlyOnce('transactions', await walk(server.url, 'transactions', 'offset', q, stats), expected);
    }
    const all = await walk(server.url, 'customers', 'cursor', '', stats);
    const high = all
      .map((r) => String(r.updated_at))
      .reduce((a, b) => (Date.parse(a) > Date.parse(b) ? a : b));
    const since = `updated_since=${encodeURIComponent(high)}`;
    expect(await walk(server.url, 'customers', 'cursor', since, stats)).toEqual([]);
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=5000', 'limit'],
    ['offset=-1', 'offset'],
    ['offset=10&cursor=Y3VzdG9tZXJz', 'offset'],
    ['cursor=definitely-not-ours', 'cursor'],
    ['updated_since=last%20tuesday', 'updated_since'],
    ['updated_since=2025-04-01T00:00:00+02:00', 'updated_since'], // the + arrives as a space
    ['page=3', 'page'],
  ])('%s → 400 problem+json naming %s', async (query, name) => {
    const res = await get(`${server.url}/v1/customers?${query}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(res.body);
    expect(problem).toMatchObject({ type: 'about:blank', title: 'Bad Request', status: 400 });
    expect(problem.detail).toContain(name);
    expect(problem.invalid_params.map((p: { name: string }) => p.name)).toContain(name);
  });

  it('401 without a key or with a wrong one; 404 for an unknown id', async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { 'x-api-key': 'wrong-key' },
      { authorization: 'Bearer wrong-key' },
      { authorization: API_KEY }, // the key without the Bearer scheme
    ];
    for (const headers of attempts) {
      const res = await get(`${server.url}/v1/accounts`, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(res.body)).toMatchObject({ status: 401, title: 'Unauthorized' });
    }
    const stats = newStats();
    const missing = await getRetrying(`${server.url}/v1/accounts/987654`, stats);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ status: 404, detail: 'account 987654 not found' });
    const found = await getRetrying(`${server.url}/v1/accounts/7`, stats);
    expect(JSON.parse(found.body)).toEqual(data.accounts.find((a) => a.account_id === 7));
  });

  it('documents itself without a key', async () => {
    const doc = JSON.parse((await get(`${server.url}/openapi.json`, {})).body);
    expect(doc.openapi).toBe('3.1.0');
    for (const r of RESOURCES)
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([`/v1/${r}`, `/v1/${r}/{id}`]));
    const docs = await get(`${server.url}/docs`, {});
    expect(docs.status).toBe(200);
    expect(docs.body).toContain('/v1/transactions');
    expect((await get(`${server.url}/healthz`, {})).status).toBe(200);
  });

  it('records every call for reviewers, faults included, and never logs the key', async () => {
    const before = new Date().toISOString();
    // `since` is strict, in ms: a request answered within the same ms as `before` was left out.
    await new Promise((resolve) => setTimeout(resolve, 5));
    await get(`${server.url}/v1/merchants?limit=2`, { authorization: `Bearer ${API_KEY}` });
    await get(`${server.url}/v1/merchants?limit=1&apikey=${API_KEY}`);
    const res = await get(`${server.url}/admin/requests?limit=10000`, { 'x-admin-key': ADMIN_KEY });
    expect(res.status).toBe(200);
    const entries = JSON.parse(res.body).data as Array<Record<string, unknown>>;
    expect(entries.length).toBeGreaterThan(100);
    expect(entries.at(-1)).toMatchObject({
      method: 'GET',
      path: '/v1/merchants?limit=1&apikey=REDACTED',
      status: 400,
      client: '127.0.0.1',
    });
    expect(entries.at(-2)).toMatchObject({ path: '/v1/merchants?limit=2', auth: 'ok' });
    expect(entries.every((e) => typeof e.time === 'string' && typeof e.duration_ms === 'number')).toBe(true);
    const kinds = new Set(entries.flatMap((e) => (e.fault ? [(e.fault as { kind: string }).kind] : [])));
    expect(kinds).toEqual(new Set(['error', 'slow', 'malformed']));
    // Requests without the right key are strangers' (or typos): counted, never in the reviewer log.
    expect(entries.every((e) => e.auth === 'ok')).toBe(true);
    expect(JSON.parse(res.body).rejected.invalid_key).toBeGreaterThan(0);
    expect(entries.some((e) => String(e.path).startsWith('/healthz'))).toBe(false);
    const recent = JSON.parse(
      (
        await get(`${server.url}/admin/requests?since=${encodeURIComponent(before)}`, {
          'x-admin-key': ADMIN_KEY,
        })
      ).body,
    ).data;
    expect(recent.length).toBeGreaterThanOrEqual(2);
    expect(recent.length).toBeLessThan(10);
    expect(res.body).not.toContain(API_KEY);
    // The process's own log: one pino JSON line per request, no key anywhere.
    const lines = server.output.split('\n').filter((l) => l.includes('"msg":"request"'));
    expect(lines.length).toBeGreaterThan(100);
    expect(JSON.parse(lines[0]!)).toHaveProperty('duration_ms');
    expect(server.output).not.toContain(API_KEY);
    expect(server.output).not.toContain(ADMIN_KEY);
    // The admin endpoints refuse the candidate's key.
    expect((await get(`${server.url}/admin/requests`)).status).toBe(401);
  });

  it('faults can be switched off and on at runtime', async () => {
    const admin = { 'x-admin-key': ADMIN_KEY, 'content-type': 'application/json' };
    const post = (body: unknown) =>
      fetch(`${server.url}/admin/faults`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
    expect((await post({ rate: 0.7 })).status).toBe(400);
    const off = await post({ rate: 0 });
    expect(await off.json()).toMatchObject({ rate: 0 });
    for (let i = 0; i < 30; i++) expect((await get(`${server.url}/v1/customers/${i + 1}`)).status).toBe(200);
    await post({ rate: 0.5, slow_max_ms: 0 });
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await get(`${server.url}/v1/customers/${i + 1}`)).status);
    expect(statuses.filter((s) => s >= 500).length).toBeGreaterThan(3);
    await post({ rate: 0.3, slow_max_ms: 30 });
  });
});

describe('data API rate limit', () => {
  const server = new DataApiProcess();
  beforeAll(async () => {
    await server.start({ API_KEY, RATE_LIMIT_PER_MINUTE: '60' });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('answers 429 with Retry-After and RateLimit headers; honouring Retry-After gets through', async () => {
    let limited: Awaited<ReturnType<typeof get>> | undefined;
    const remaining: string[] = [];
    const started = Date.now();
    for (let i = 0; i < 200 && !limited; i++) {
      const res = await get(`${server.url}/v1/merchants/1`);
      if (res.status === 429) limited = res;
      else {
        expect(res.status).toBe(200);
        expect(res.headers.get('ratelimit-limit')).toBe('60');
        remaining.push(String(res.headers.get('ratelimit-remaining')));
      }
    }
    const seconds = (Date.now() - started) / 1000;
    expect(limited, 'no 429 within 200 requests').toBeDefined();
    // A full bucket of 60 counts down from 59 to 0, then refuses: every answer says how many are
    // left, as a whole number below the limit. Refills (one a second) only add what time allows.
    expect(
      remaining.every((r) => /^\d+$/.test(r) && Number(r) < 60),
      remaining.join(','),
    ).toBe(true);
    expect(remaining[0]).toBe('59');
    expect(remaining.at(-1)).toBe('0');
    expect(remaining.length).toBeGreaterThanOrEqual(60);
    expect(remaining.length).toBeLessThanOrEqual(60 + Math.ceil(seconds) + 1);
    const retryAfter = limited!.headers.get('retry-after');
    expect(retryAfter).toMatch(/^[1-9]\d*$/);
    expect(Number(retryAfter)).toBeLessThanOrEqual(2); // 60 per minute: a token a second
    expect(limited!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(limited!.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(limited!.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(limited!.body)).toMatchObject({ status: 429, title: 'Too Many Requests' });
    await sleep(Number(retryAfter) * 1000);
    expect((await get(`${server.url}/v1/merchants/1`)).status).toBe(200);
    // The public endpoints are not limited, and no admin key means no admin endpoints.
    expect((await get(`${server.url}/healthz`, {})).status).toBe(200);
    expect((await get(`${server.url}/admin/requests`, { 'x-admin-key': ADMIN_KEY })).status).toBe(404);
  });

  it('shuts down gracefully on SIGTERM', async () => {
    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(server.output).toMatch(/"signal":"SIGTERM".*shutting down/);
    expect(server.output).toMatch(/"msg":"stopped"/);
    await expect(get(`${server.url}/healthz`, {})).rejects.toThrow();
  });
});

describe('data API under a keyless flood, its admin switch on a port of its own', () => {
  const server = new DataApiProcess();
  let admin = '';
  beforeAll(async () => {
    const adminPort = await freePort();
    admin = `http://127.0.0.1:${adminPort}`;
    await server.start({
      API_KEY,
      ADMIN_KEY,
      ADMIN_PORT: String(adminPort),
      REQUEST_LOG_SIZE: '50',
      WRONG_KEYS_PER_MINUTE: '20',
      FAULT_RATE: '0',
    });
  });

  it('serves /admin on ADMIN_PORT only: the candidates’ port (the one the gateway routes) has none', async () => {
    expect((await get(`${server.url}/admin/faults`, { 'x-admin-key': ADMIN_KEY })).status).toBe(404);
    expect((await get(`${admin}/admin/faults`, { 'x-admin-key': ADMIN_KEY })).status).toBe(200);
    expect((await get(`${admin}/admin/faults`, { 'x-admin-key': 'wrong-admin-key-0123456789' })).status).toBe(
      401,
    );
    expect((await get(`${admin}/v1/customers/1`)).status).toBe(404);
    // Metrics likewise: on the admin port, never on the candidates'.
    expect((await get(`${server.url}/metrics`)).status).toBe(404);
    expect((await get(`${admin}/metrics`)).status).toBe(200);
  });
  afterAll(async () => {
    await server.stop();
  });

  it('keeps the candidate’s calls in the reviewer log through 200 keyless and wrong-key requests, and throttles them', async () => {
    for (let i = 1; i <= 3; i++) expect((await get(`${server.url}/v1/customers/${i}`)).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push((await get(`${server.url}/v1/customers`, {})).status);
    for (let i = 0; i < 100; i++)
      statuses.push(
        (await get(`${server.url}/v1/customers`, { 'x-api-key': `guess-${i}-0123456789abcdef` })).status,
      );
    // 20 wrong keys a minute are answered 401; the rest 429 with Retry-After.
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(180);
    // The right key is never throttled by strangers' failures.
    expect((await get(`${server.url}/v1/customers/4`)).status).toBe(200);
    const log = JSON.parse((await get(`${admin}/admin/requests`, { 'x-admin-key': ADMIN_KEY })).body);
    expect(log.data.map((e: { path: string }) => e.path)).toEqual([
      '/v1/customers/1',
      '/v1/customers/2',
      '/v1/customers/3',
      '/v1/customers/4',
    ]);
    // anonymous: the /admin and /metrics probes on the candidates' port above (404s without a key).
    expect(log.rejected).toEqual({ missing_key: 20, invalid_key: 0, throttled: 180, anonymous: 2 });
    // The same counts for Prometheus, scraped from the admin port.
    const metrics = (await get(`${admin}/metrics`)).body;
    for (const [reason, n] of Object.entries({
      missing_key: 20,
      invalid_key: 0,
      throttled: 180,
      anonymous: 2,
    }))
      expect(metrics).toContain(`epreuve_data_api_rejected_requests_total{reason="${reason}"} ${n}\n`);
  });
});

describe('data API configuration', () => {
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, [DATA_API_MAIN], {
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });

  it.each([
    [{}, /API_KEY: required/],
    [{ API_KEY: 'short-key-0123' }, /API_KEY: must be at least 22 characters \(128 bits\)/],
    [{ API_KEY, PAGE_SIZE: 'abc' }, /PAGE_SIZE: must be an integer between 1 and 1000/],
    [{ API_KEY, FAULT_RATE: '0.9' }, /FAULT_RATE: must be between 0 and 0.5/],
    [{ API_KEY, DATASET: 'retail@7' }, /DATASET: unknown dataset "retail@7"/],
  ])('%j → exit 2 naming the variable', (env, message) => {
    const res = run(env);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/^data-api: invalid configuration: /);
    expect(res.stderr).toMatch(message);
  });
});

describe("data API start with the image's prebuilt tables (EPREUVE_PREBUILT_DIR)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'data-api-prebuilt-'));
  const retail = resolveDataset('retail@1');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Starts main.ts on `dir`, fetches a customer, stops it; its log and the customer. */
  async function startOn(): Promise<{ output: string; customer: unknown }> {
    const server = await new DataApiProcess().start({ API_KEY, EPREUVE_PREBUILT_DIR: dir });
    try {
      const res = await get(`${server.url}/v1/customers/1`);
      expect(res.status).toBe(200);
      return { output: server.output, customer: JSON.parse(res.body) };
    } finally {
      await server.stop();
    }
  }

  it('serves the file it reads, saying so; a corrupt file is refused (logged) and the tables generated', async () => {
    const file = writePrebuilt(dir, retail, 'small', DATA_API_VARIANT);
    const fine = await startOn();
    expect(fine.output).toMatch(/"tables":"prebuilt".*"msg":"data API ready"/);
    expect(fine.customer).toMatchObject(data.customers[0]!);
    // Same shape, one value changed: the checksum refuses it; the data served is still the generator's.
    writeFileSync(file, readFileSync(file, 'utf8').replace('"customer_id":1,', '"customer_id":1 ,'));
    const spoiled = await startOn();
    expect(spoiled.output).toContain(
      'does not match its checksum (truncated or corrupt); generating instead',
    );
    expect(spoiled.output).toMatch(/"tables":"generated".*"msg":"data API ready"/);
    expect(spoiled.customer).toEqual(fine.customer);
  });
});
