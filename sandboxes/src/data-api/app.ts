/**
 * The data API sandbox: serves a dataset's customers, accounts, merchants and transactions over
 * HTTP for collection exercises. Reviewers watch how a candidate's client handles what real APIs
 * do: an API key, two pagination styles, incremental loads, a rate limit, and (when FAULT_RATE > 0)
 * 5xx answers, slow answers and pages with malformed rows.
 *
 * Pure pieces (cursor, timestamp and query parsing, page selection, token bucket, fault decision,
 * row corruption, ring buffer, redaction, env parsing) are exported and unit-tested; `buildApp`
 * wires them into a fastify instance that tests drive with `inject` or a real socket.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import { z } from 'zod';
import { datasetKey, resolveDataset } from '../datasets/catalog.ts';
import { Random } from '../datasets/random.ts';
import type { RetailData } from '../datasets/retail/v1.ts';

// ---------------------------------------------------------------------------------------------
// Resources

/** The served resources and their id column. */
export const RESOURCES = {
  customers: 'customer_id',
  accounts: 'account_id',
  merchants: 'merchant_id',
  transactions: 'transaction_id',
} as const;
export type ResourceName = keyof typeof RESOURCES;
export const RESOURCE_NAMES = Object.keys(RESOURCES) as ResourceName[];
const SINGULAR: Record<ResourceName, string> = {
  customers: 'customer',
  accounts: 'account',
  merchants: 'merchant',
  transactions: 'transaction',
};

export type Row = Record<string, unknown>;
export const MAX_LIMIT = 1000;

/** Rows are served in (updated_at, id) order: the only order in which a cursor stays correct. */
export interface SortKey {
  t: number; // updated_at, epoch ms
  id: number;
}
export const compareKeys = (a: SortKey, b: SortKey) => a.t - b.t || a.id - b.id;

export interface Table {
  resource: ResourceName;
  rows: Row[];
  keys: SortKey[];
  byId: Map<number, Row>;
}

export function buildTable(resource: ResourceName, source: readonly Row[]): Table {
  const idField = RESOURCES[resource];
  // updated_at strings mix "…:05Z" and "…:05.123Z", so compare parsed times, never the strings.
  const pairs = source.map((row) => ({
    row,
    key: { t: Date.parse(String(row.updated_at)), id: Number(row[idField]) },
  }));
  pairs.sort((a, b) => compareKeys(a.key, b.key));
  return {
    resource,
    rows: pairs.map((p) => p.row),
    keys: pairs.map((p) => p.key),
    byId: new Map(pairs.map((p) => [p.key.id, p.row])),
  };
}

/** Index of the first key strictly after `k` in ascending `keys` (binary search). */
export function firstAfter(keys: readonly SortKey[], k: SortKey): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid]!, k) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// Cursors: base64url of "resource|updated_at|id" of the last row served. Opaque to clients; the
// resource is inside so that a customers cursor sent to /v1/accounts is refused, not misread.

export function encodeCursor(resource: ResourceName, key: SortKey): string {
  return Buffer.from(`${resource}|${new Date(key.t).toISOString()}|${key.id}`, 'utf8').toString('base64url');
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export function decodeCursor(resource: ResourceName, cursor: string): Parsed<SortKey> {
  const bad = (why: string): Parsed<SortKey> => ({
    ok: false,
    reason: `cursor is not valid (${why}); send back the next_cursor of the previous page unchanged`,
  });
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return bad('not base64url');
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  // Buffer decoding is lenient; a cursor that does not re-encode to itself was not made here.
  if (Buffer.from(text, 'utf8').toString('base64url') !== cursor) return bad('not base64url');
  const parts = text.split('|');
  if (parts.length !== 3) return bad('unknown format');
  const [r, updated, id] = parts as [string, string, string];
  if (r !== resource)
    return bad(RESOURCE_NAMES.includes(r as ResourceName) ? `it belongs to /v1/${r}` : 'unknown format');
  const t = Date.parse(updated);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(updated) || Number.isNaN(t))
    return bad('unknown format');
  if (!/^[1-9]\d{0,14}$/.test(id)) return bad('unknown format');
  return { ok: true, value: { t, id: Number(id) } };
}

// ---------------------------------------------------------------------------------------------
// Timestamps

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2})))?$/;

/**
 * Parses an RFC 3339 timestamp (or a bare date, meaning midnight UTC) to epoch ms, floored:
 * `updated_at > since` holds for an integer-ms updated_at exactly when it exceeds the floor.
 * Stricter than Date.parse, which accepts "2025-02-30" and local times without an offset.
 */
export function parseTimestamp(s: string): number | null {
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', , sign, oh = '0', om = '0'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return null;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59 || Number(oh) > 23 || Number(om) > 59)
    return null;
  const offsetMs = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
  const utc = Date.UTC(year, month - 1, day, Number(h), Number(mi), Number(sec));
  return utc - (sign ? offsetMs : 0) + Number(frac.padEnd(3, '0').slice(0, 3));
}

// ---------------------------------------------------------------------------------------------
// Query parameters

export interface InvalidParam {
  name: string;
  reason: string;
}

export interface PageRequest {
  limit: number;
  cursor: SortKey | null;
  offset: number | null;
  updatedSince: number | null;
}

const LIST_PARAMS = ['cursor', 'offset', 'limit', 'updated_since'];
const SENSITIVE_PARAM = /key|token|secret|password|auth/i;
const TIMESTAMP_HINT = 'an RFC 3339 timestamp such as 2025-03-01T00:00:00Z (send a + offset as %2B)';

/** Parses a list endpoint's raw query string; every problem is reported with the parameter named. */
export function parseListQuery(
  rawQuery: string,
  resource: ResourceName,
  pageSize: number,
): { ok: true; value: PageRequest } | { ok: false; invalid: InvalidParam[] } {
  const params = new URLSearchParams(rawQuery);
  const invalid: InvalidParam[] = [];
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) {
      if (LIST_PARAMS.includes(name)) invalid.push({ name, reason: `${name} is given more than once` });
      continue;
    }
    seen.add(name);
    if (!LIST_PARAMS.includes(name)) {
      invalid.push({
        name,
        reason: SENSITIVE_PARAM.test(name)
          ? `${name} is not a parameter of this endpoint; send the API key in the X-API-Key header, never in a URL`
          : `${name} is not a parameter of this endpoint; use ${LIST_PARAMS.join(', ')}`,
      });
    }
  }
  const value: PageRequest = { limit: pageSize, cursor: null, offset: null, updatedSince: null };

  const limit = params.get('limit');
  if (limit !== null) {
    const n = /^\d{1,7}$/.test(limit) ? Number(limit) : Number.NaN;
    if (!(n >= 1 && n <= MAX_LIMIT)) {
      invalid.push({ name: 'limit', reason: `limit must be an integer between 1 and ${MAX_LIMIT}` });
    } else value.limit = n;
  }
  const offset = params.get('offset');
  if (offset !== null) {
    if (!/^\d{1,15}$/.test(offset)) invalid.push({ name: 'offset', reason: 'offset must be an integer ≥ 0' });
    else value.offset = Number(offset);
  }
  const cursor = params.get('cursor');
  if (cursor !== null) {
    const decoded = decodeCursor(resource, cursor);
    if (decoded.ok) value.cursor = decoded.value;
    else invalid.push({ name: 'cursor', reason: decoded.reason });
  }
  if (cursor !== null && offset !== null) {
    invalid.push({
      name: 'offset',
      reason: 'cursor and offset cannot be used together; page with one or the other',
    });
  }
  const since = params.get('updated_since');
  if (since !== null) {
    const t = parseTimestamp(since);
    if (t === null)
      invalid.push({ name: 'updated_since', reason: `updated_since must be ${TIMESTAMP_HINT}` });
    else value.updatedSince = t;
  }
  return invalid.length ? { ok: false, invalid } : { ok: true, value };
}

// ---------------------------------------------------------------------------------------------
// Page selection

export interface PageSlice {
  start: number;
  end: number;
  /** Key of the last row served when more rows follow, else null. */
  next: SortKey | null;
  /** Offset pagination only: rows matching updated_since, and where the next page starts. */
  total?: number;
  nextOffset?: number | null;
}

/** Which rows of a table (sorted by key) a page holds. Cursor and offset walk the same order. */
export function selectPage(keys: readonly SortKey[], q: PageRequest): PageSlice {
  const n = keys.length;
  const base =
    q.updatedSince === null ? 0 : firstAfter(keys, { t: q.updatedSince, id: Number.POSITIVE_INFINITY });
  if (q.offset !== null) {
    const start = Math.min(n, base + q.offset);
    const end = Math.min(n, start + q.limit);
    const more = end < n && end > start;
    return {
      start,
      end,
      next: more ? keys[end - 1]! : null,
      total: n - base,
      nextOffset: more ? q.offset + (end - start) : null,
    };
  }
  const start = Math.max(base, q.cursor ? firstAfter(keys, q.cursor) : 0);
  const end = Math.min(n, start + q.limit);
  return { start, end, next: end < n && end > start ? keys[end - 1]! : null };
}

// ---------------------------------------------------------------------------------------------
// Rate limiting: a token bucket per API key, `limit` tokens, refilled at limit/60 per second.

export interface Bucket {
  tokens: number;
  at: number; // ms
}
export interface TokenDecision {
  bucket: Bucket;
  allowed: boolean;
  remaining: number;
  /** Whole seconds until a request would be allowed (≥ 1 when refused, 0 when allowed). */
  retryAfter: number;
  /** Whole seconds until the bucket is full again. */
  reset: number;
}

export function takeToken(bucket: Bucket | undefined, now: number, limitPerMinute: number): TokenDecision {
  const perMs = limitPerMinute / 60_000;
  const prev = bucket ?? { tokens: limitPerMinute, at: now };
  const tokens = Math.min(limitPerMinute, prev.tokens + Math.max(0, now - prev.at) * perMs);
  const allowed = tokens >= 1;
  const left = allowed ? tokens - 1 : tokens;
  return {
    bucket: { tokens: left, at: now },
    allowed,
    remaining: Math.floor(left),
    retryAfter: allowed ? 0 : Math.max(1, Math.ceil((1 - left) / perMs / 1000)),
    reset: Math.ceil((limitPerMinute - left) / perMs / 1000),
  };
}

// ---------------------------------------------------------------------------------------------
// Faults

export type Corruption =
  | { how: 'missing_field'; field: string }
  | { how: 'broken_date' | 'bad_amount' | 'wrong_type'; field: string; value: string };

export type Fault =
  | { kind: 'error'; status: 500 | 502 | 503 }
  | { kind: 'slow'; delay_ms: number }
  | { kind: 'malformed'; rows: Array<{ index: number; corruption: Corruption }> };

export interface FaultSettings {
  rate: number;
  slowMaxMs: number;
}

/** Fields a malformed copy may lose or break, per resource (never the id: a client must be able to tell which row is bad). */
const CORRUPTIBLE: Record<
  ResourceName,
  { required: string[]; dates: string[]; ints: string[]; amount?: string }
> = {
  customers: {
    required: ['first_name', 'country', 'updated_at'],
    dates: ['created_at', 'updated_at'],
    ints: [],
  },
  accounts: {
    required: ['customer_id', 'iban', 'currency'],
    dates: ['opened_at', 'updated_at'],
    ints: ['customer_id'],
  },
  merchants: { required: ['name', 'country'], dates: ['updated_at'], ints: [] },
  transactions: {
    required: ['account_id', 'amount', 'currency', 'booked_at'],
    dates: ['booked_at', 'ingested_at', 'updated_at'],
    ints: ['account_id'],
    amount: 'amount',
  },
};
const BROKEN_DATES = ['2025-02-30T25:61:00Z', 'not a date', '31/02/2025 24:00', ''];
const BAD_AMOUNTS = ['N/A', '12,34', '1.2.3', 'NaN', ''];

export function pickCorruption(rng: Random, resource: ResourceName): Corruption {
  const c = CORRUPTIBLE[resource];
  const kinds: Corruption['how'][] = ['missing_field', 'broken_date'];
  if (c.amount) kinds.push('bad_amount', 'bad_amount'); // the classic: weigh it up
  if (c.ints.length) kinds.push('wrong_type');
  const how = rng.pick(kinds);
  switch (how) {
    case 'missing_field':
      return { how, field: rng.pick(c.required) };
    case 'broken_date':
      return { how, field: rng.pick(c.dates), value: rng.pick(BROKEN_DATES) };
    case 'bad_amount':
      return { how, field: c.amount!, value: rng.pick(BAD_AMOUNTS) };
    case 'wrong_type':
      return { how, field: rng.pick(c.ints), value: 'unknown' };
  }
}

/**
 * Whether this data request fails, and how. Deterministic for a given PRNG state. A request
 * draws one number whatever happens, so the sequence of decisions depends only on the sequence
 * of requests. `rows` is the page size (0 for single objects and empty pages: no malformed rows).
 */
export function decideFault(
  rng: Random,
  settings: FaultSettings,
  ctx: { resource: ResourceName; rows: number },
): Fault | null {
  if (!(rng.next() < settings.rate)) return null;
  const kinds: Array<readonly [Fault['kind'], number]> = [['error', 2]];
  if (settings.slowMaxMs > 0) kinds.push(['slow', 1]);
  if (ctx.rows > 0) kinds.push(['malformed', 1]);
  const kind = rng.weighted(kinds);
  if (kind === 'slow') {
    return { kind, delay_ms: rng.int(Math.ceil(settings.slowMaxMs / 2), settings.slowMaxMs) };
  }
  if (kind === 'malformed') {
    const count = rng.int(1, Math.min(3, ctx.rows));
    const indexes = new Set<number>();
    while (indexes.size < count) indexes.add(rng.int(0, ctx.rows - 1));
    return {
      kind,
      rows: [...indexes]
        .sort((a, b) => a - b)
        .map((index) => ({ index, corruption: pickCorruption(rng, ctx.resource) })),
    };
  }
  return { kind: 'error', status: rng.pick([500, 502, 503] as const) };
}

/** A broken copy of `row`; the dataset's own row is never touched, so a retry gets it intact. */
export function corruptRow(row: Row, c: Corruption): Row {
  const copy = { ...row };
  if (c.how === 'missing_field') delete copy[c.field];
  else copy[c.field] = c.value;
  return copy;
}

// ---------------------------------------------------------------------------------------------
// Request log

export class RingBuffer<T> {
  private readonly items: T[] = [];
  private head = 0; // index of the oldest item once full
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.head] = item;
      this.head = (this.head + 1) % this.capacity;
    }
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.head), ...this.items.slice(0, this.head)];
  }
}

export interface LoggedRequest {
  seq: number;
  time: string;
  method: string;
  path: string;
  status: number;
  duration_ms: number;
  /** Which credential the request carried: `null` on public endpoints. */
  auth: 'ok' | 'missing' | 'invalid' | null;
  fault: LoggedFault | null;
  client: string;
}
export type LoggedFault =
  | { kind: 'error'; status: number }
  | { kind: 'slow'; delay_ms: number }
  | { kind: 'malformed'; rows: Array<{ id: unknown } & Corruption> };

/**
 * The URL as logged: values of secret-looking query parameters and every occurrence of a known
 * secret (raw or percent-encoded) are replaced, so a key sent as ?api_key=… never reaches a log.
 */
export function redactUrl(url: string, secrets: readonly string[]): string {
  let out = url;
  const q = out.indexOf('?');
  if (q >= 0) {
    const query = out
      .slice(q + 1)
      .split('&')
      .map((part) => {
        const eq = part.indexOf('=');
        if (eq < 0) return part;
        let name = part.slice(0, eq);
        try {
          name = decodeURIComponent(name.replace(/\+/g, ' '));
        } catch {}
        return SENSITIVE_PARAM.test(name) ? `${part.slice(0, eq)}=REDACTED` : part;
      })
      .join('&');
    out = `${out.slice(0, q)}?${query}`;
  }
  for (const s of secrets) {
    if (!s) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join('REDACTED');
  }
  return out.length > 2000 ? `${out.slice(0, 2000)}…` : out;
}

// ---------------------------------------------------------------------------------------------
// Configuration

export interface DataApiConfig {
  dataset: string;
  size: 'small' | 'standard';
  pageSize: number;
  rateLimitPerMinute: number;
  faultRate: number;
  faultSlowMaxMs: number;
  faultSeed: number;
  apiKey: string;
  /** Unset: the /admin endpoints answer 404. */
  adminKey: string | undefined;
  requestLogSize: number;
}

export const DEFAULTS: Omit<DataApiConfig, 'apiKey' | 'faultSeed'> = {
  dataset: 'retail@1',
  size: 'standard',
  pageSize: 100,
  rateLimitPerMinute: 120,
  faultRate: 0,
  faultSlowMaxMs: 2000,
  adminKey: undefined,
  requestLogSize: 10_000,
};

const intVar = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, `must be an integer between ${min} and ${max}`)
    .transform(Number)
    .pipe(
      z.number().min(min, `must be between ${min} and ${max}`).max(max, `must be between ${min} and ${max}`),
    );

const envSchema = z.object({
  DATASET: z
    .string()
    .default(DEFAULTS.dataset)
    .superRefine((ref, ctx) => {
      try {
        resolveDataset(ref);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
  DATASET_SIZE: z.enum(['small', 'standard'], { error: 'must be small or standard' }).default(DEFAULTS.size),
  PAGE_SIZE: intVar(1, MAX_LIMIT).default(DEFAULTS.pageSize),
  RATE_LIMIT_PER_MINUTE: intVar(1, 100_000).default(DEFAULTS.rateLimitPerMinute),
  FAULT_RATE: z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'must be a number between 0 and 0.5')
    .transform(Number)
    .pipe(z.number().max(0.5, 'must be between 0 and 0.5'))
    .default(DEFAULTS.faultRate),
  FAULT_SLOW_MAX_MS: intVar(0, 60_000).default(DEFAULTS.faultSlowMaxMs),
  FAULT_SEED: intVar(0, 2 ** 32 - 1).optional(),
  API_KEY: z.string({ error: 'required (the key candidates send)' }).min(8, 'must be at least 8 characters'),
  ADMIN_KEY: z.string().min(8, 'must be at least 8 characters').optional(),
  REQUEST_LOG_SIZE: intVar(1, 1_000_000).default(DEFAULTS.requestLogSize),
  PORT: intVar(0, 65_535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export interface ProcessConfig extends DataApiConfig {
  port: number;
  host: string;
  logLevel: string;
}

/** Reads the environment; an empty variable counts as unset. Errors name every bad variable. */
export function configFromEnv(env: Record<string, string | undefined>): Parsed<ProcessConfig> {
  const relevant = Object.fromEntries(
    Object.keys(envSchema.shape).flatMap((k) => (env[k] ? [[k, env[k]]] : [])),
  );
  const res = envSchema.safeParse(relevant);
  if (!res.success) {
    return { ok: false, reason: res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
  }
  const e = res.data;
  return {
    ok: true,
    value: {
      dataset: e.DATASET,
      size: e.DATASET_SIZE,
      pageSize: e.PAGE_SIZE,
      rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
      faultRate: e.FAULT_RATE,
      faultSlowMaxMs: e.FAULT_SLOW_MAX_MS,
      faultSeed: e.FAULT_SEED ?? randomInt(2 ** 32 - 1),
      apiKey: e.API_KEY,
      adminKey: e.ADMIN_KEY,
      requestLogSize: e.REQUEST_LOG_SIZE,
      port: e.PORT,
      host: e.HOST,
      logLevel: e.LOG_LEVEL,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// OpenAPI

type Schema = Record<string, unknown>;
const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const time: Schema = { type: 'string', format: 'date-time' };
const nullable = (s: Schema): Schema => ({ ...s, type: [s.type, 'null'] });
const oneOf = (...values: string[]): Schema => ({ type: 'string', enum: values });

/** The documented shape of each resource's rows (the unit tests check the dataset against it). */
export const ROW_SCHEMAS: Record<ResourceName, Record<string, Schema>> = {
  customers: {
    customer_id: int,
    first_name: str,
    last_name: str,
    email: nullable(str),
    country: { ...str, description: 'ISO 3166-1 alpha-2' },
    city: str,
    timezone: { ...str, description: 'IANA time zone' },
    segment: oneOf('retail', 'premium', 'business'),
    created_at: time,
    updated_at: time,
  },
  accounts: {
    account_id: int,
    customer_id: int,
    iban: str,
    type: oneOf('checking', 'savings', 'card'),
    currency: { ...str, description: 'ISO 4217' },
    opened_at: time,
    closed_at: nullable(time),
    updated_at: time,
  },
  merchants: {
    merchant_id: int,
    name: str,
    category: nullable(str),
    country: str,
    updated_at: time,
  },
  transactions: {
    transaction_id: int,
    account_id: int,
    merchant_id: nullable(int),
    counterparty_account_id: nullable(int),
    kind: oneOf('card', 'transfer', 'fee', 'refund', 'salary'),
    direction: oneOf('debit', 'credit'),
    amount: {
      type: 'string',
      pattern: '^-?\\d+\\.\\d{2}$',
      description: 'Decimal with two places, as a string (never a float)',
    },
    currency: str,
    booked_at: time,
    ingested_at: time,
    reference: str,
    updated_at: time,
  },
};

const problemRef = { $ref: '#/components/responses/Problem' };

export function openApiDocument(
  config: Pick<DataApiConfig, 'dataset' | 'pageSize' | 'rateLimitPerMinute' | 'adminKey'>,
) {
  const paths: Record<string, unknown> = {};
  const errors = {
    '401': { ...problemRef, description: 'Missing or wrong API key' },
    '429': {
      description: `More than ${config.rateLimitPerMinute} requests per minute; wait Retry-After seconds`,
      headers: { 'Retry-After': { schema: { type: 'integer', minimum: 1 } } },
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    },
    '500': { ...problemRef, description: 'Server error; retry with backoff' },
    '502': { ...problemRef, description: 'Bad gateway; retry with backoff' },
    '503': { ...problemRef, description: 'Unavailable; retry after Retry-After seconds' },
  };
  for (const resource of RESOURCE_NAMES) {
    const rowRef = { $ref: `#/components/schemas/${SINGULAR[resource]}` };
    paths[`/v1/${resource}`] = {
      get: {
        operationId: `list_${resource}`,
        summary: `List ${resource}`,
        description:
          'Rows in (updated_at, id) order. Page with cursor (pass next_cursor back until it is null) or with offset (the response then carries total); not both.',
        tags: ['data'],
        parameters: ['cursor', 'offset', 'limit', 'updated_since'].map((p) => ({
          $ref: `#/components/parameters/${p}`,
        })),
        responses: {
          '200': {
            description: 'A page of rows',
            headers: {
              'RateLimit-Limit': { $ref: '#/components/headers/RateLimit-Limit' },
              'RateLimit-Remaining': { $ref: '#/components/headers/RateLimit-Remaining' },
              'RateLimit-Reset': { $ref: '#/components/headers/RateLimit-Reset' },
            },
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['data', 'next_cursor'],
                  properties: {
                    data: { type: 'array', items: rowRef },
                    next_cursor: { type: ['string', 'null'], description: 'null on the last page' },
                    total: {
                      type: 'integer',
                      description: 'Offset pagination only: rows matching the filter',
                    },
                    next_offset: {
                      type: ['integer', 'null'],
                      description: 'Offset pagination only: offset of the next page, null on the last page',
                    },
                  },
                },
              },
            },
          },
          '400': { ...problemRef, description: 'A bad parameter, named in invalid_params' },
          ...errors,
        },
      },
    };
    paths[`/v1/${resource}/{id}`] = {
      get: {
        operationId: `get_${SINGULAR[resource]}`,
        summary: `One ${SINGULAR[resource]} by ${RESOURCES[resource]}`,
        tags: ['data'],
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
        responses: {
          '200': {
            description: `The ${SINGULAR[resource]}`,
            content: { 'application/json': { schema: rowRef } },
          },
          '400': { ...problemRef, description: 'id is not a positive integer' },
          '404': { ...problemRef, description: `No such ${SINGULAR[resource]}` },
          ...errors,
        },
      },
    };
  }
  const open = { security: [], tags: ['meta'] };
  paths['/healthz'] = { get: { ...open, summary: 'Liveness', responses: { '200': { description: 'OK' } } } };
  paths['/openapi.json'] = {
    get: { ...open, summary: 'This document', responses: { '200': { description: 'OK' } } },
  };
  paths['/docs'] = {
    get: { ...open, summary: 'Human-readable documentation', responses: { '200': { description: 'HTML' } } },
  };
  if (config.adminKey) {
    const admin = { security: [{ adminKey: [] }, { bearer: [] }], tags: ['admin'] };
    paths['/admin/requests'] = {
      get: {
        ...admin,
        summary: 'Recorded requests, newest last (reviewers)',
        parameters: [
          { name: 'since', in: 'query', schema: time, description: 'Only requests after this time' },
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 },
          },
        ],
        responses: { '200': { description: '{data: [...]}' }, '400': problemRef, '401': problemRef },
      },
    };
    paths['/admin/faults'] = {
      get: { ...admin, summary: 'Current fault settings', responses: { '200': { description: 'OK' } } },
      post: {
        ...admin,
        summary: 'Change fault settings without a restart',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['rate'],
                additionalProperties: false,
                properties: {
                  rate: { type: 'number', minimum: 0, maximum: 0.5 },
                  slow_max_ms: { type: 'integer', minimum: 0, maximum: 60_000 },
                  seed: { type: 'integer', minimum: 0 },
                },
              },
            },
          },
        },
        responses: { '200': { description: 'The new settings' }, '400': problemRef, '401': problemRef },
      },
    };
  }
  const rateHeader = (description: string) => ({ description, schema: { type: 'integer' } });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Data API',
      version: '1.0.0',
      description: `Dataset ${config.dataset}. Authenticate with X-API-Key: <key> or Authorization: Bearer <key>. Errors are RFC 9457 problem+json. At most ${config.rateLimitPerMinute} requests per minute per key.`,
    },
    security: [{ apiKey: [] }, { bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        bearer: { type: 'http', scheme: 'bearer' },
        ...(config.adminKey ? { adminKey: { type: 'apiKey', in: 'header', name: 'X-Admin-Key' } } : {}),
      },
      parameters: {
        cursor: {
          name: 'cursor',
          in: 'query',
          description: 'Opaque: the next_cursor of the previous page. Not with offset.',
          schema: str,
        },
        offset: {
          name: 'offset',
          in: 'query',
          description: 'Rows to skip. Not with cursor. The response then carries total.',
          schema: { type: 'integer', minimum: 0 },
        },
        limit: {
          name: 'limit',
          in: 'query',
          description: 'Rows per page',
          schema: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: config.pageSize },
        },
        updated_since: {
          name: 'updated_since',
          in: 'query',
          description: 'Only rows with updated_at strictly after this RFC 3339 timestamp (incremental loads)',
          schema: time,
        },
      },
      headers: {
        'RateLimit-Limit': rateHeader('Requests allowed per minute'),
        'RateLimit-Remaining': rateHeader('Requests left right now'),
        'RateLimit-Reset': rateHeader('Seconds until the full allowance is back'),
      },
      responses: {
        Problem: {
          description: 'An RFC 9457 problem',
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        },
      },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status'],
          properties: {
            type: str,
            title: str,
            status: int,
            detail: str,
            instance: str,
            invalid_params: {
              type: 'array',
              items: { type: 'object', properties: { name: str, reason: str } },
            },
          },
        },
        ...Object.fromEntries(
          RESOURCE_NAMES.map((r) => [
            SINGULAR[r],
            {
              type: 'object',
              required: Object.keys(ROW_SCHEMAS[r]),
              additionalProperties: false,
              properties: ROW_SCHEMAS[r],
            },
          ]),
        ),
      },
    },
  };
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A static page rendered from the OpenAPI document: no script, no external asset. */
export function docsPage(doc: ReturnType<typeof openApiDocument>): string {
  const params = doc.components.parameters as Record<string, { name: string; description: string }>;
  const sections = Object.entries(doc.paths as Record<string, Record<string, Record<string, unknown>>>)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => {
        const ps = (
          (op.parameters ?? []) as Array<{ $ref?: string; name?: string; description?: string }>
        ).map((p) => (p.$ref ? params[p.$ref.split('/').pop()!]! : p));
        const rows = ps
          .map(
            (p) =>
              `<tr><td><code>${escapeHtml(p.name ?? '')}</code></td><td>${escapeHtml(p.description ?? '')}</td></tr>`,
          )
          .join('');
        const codes = Object.keys((op.responses ?? {}) as object).join(', ');
        const auth = Array.isArray(op.security) && op.security.length === 0 ? 'no key' : 'key required';
        return `<section><h2><code>${method.toUpperCase()} ${escapeHtml(path)}</code></h2>
<p>${escapeHtml(String(op.summary ?? ''))}${op.description ? ` — ${escapeHtml(String(op.description))}` : ''} <em>(${auth})</em></p>
${rows ? `<table><tr><th>parameter</th><th>meaning</th></tr>${rows}</table>` : ''}<p>Responses: ${codes}</p></section>`;
      }),
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}</style>
</head><body><h1>${escapeHtml(doc.info.title)}</h1><p>${escapeHtml(doc.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
${sections}
</body></html>`;
}

// ---------------------------------------------------------------------------------------------
// The app

export interface BuildOptions {
  logger?: FastifyServerOptions['logger'];
  /** Clock for the rate limiter and the request log (tests pass a fake one). */
  clock?: () => number;
  /** Pre-generated rows, so tests building many apps generate the dataset once. */
  data?: Pick<RetailData, ResourceName>;
}

type Problem = {
  status: number;
  detail: string;
  invalid_params?: InvalidParam[];
  headers?: Record<string, string>;
};

function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  const body = {
    type: 'about:blank',
    title: STATUS_CODES[p.status] ?? 'Error',
    status: p.status,
    detail: p.detail,
    instance: reply.request.url.split('?')[0],
    ...(p.invalid_params ? { invalid_params: p.invalid_params } : {}),
  };
  return reply
    .code(p.status)
    .headers(p.headers ?? {})
    .header('content-type', 'application/problem+json; charset=utf-8')
    .send(JSON.stringify(body));
}

const badRequest = (reply: FastifyReply, invalid: InvalidParam[]) =>
  sendProblem(reply, {
    status: 400,
    detail: invalid.map((i) => i.reason).join('; '),
    invalid_params: invalid,
  });

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
/** Constant-time: both sides are hashed to equal length first, so neither content nor length leaks. */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The key a request carries in X-API-Key (or X-Admin-Key) or as a Bearer token. */
function presentedKey(request: FastifyRequest, header: string): string | null {
  const direct = request.headers[header];
  if (typeof direct === 'string' && direct) return direct;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  return m ? m[1]! : null;
}

interface Note {
  auth: LoggedRequest['auth'];
  fault: LoggedFault | null;
}

function loadTables(data: Pick<RetailData, ResourceName>): Record<ResourceName, Table> {
  return Object.fromEntries(
    RESOURCE_NAMES.map((r) => [r, buildTable(r, data[r] as unknown as Row[])]),
  ) as Record<ResourceName, Table>;
}

const MAX_CONSECUTIVE_FAULTS = 3;
const MAX_TRACKED_REQUESTS = 10_000;

export function buildApp(
  config: Partial<DataApiConfig> & Pick<DataApiConfig, 'apiKey'>,
  options: BuildOptions = {},
): FastifyInstance {
  const cfg: DataApiConfig = { ...DEFAULTS, faultSeed: randomInt(2 ** 32 - 1), ...config };
  const clock = options.clock ?? Date.now;
  const dataset = resolveDataset(cfg.dataset);
  // Generated inline, not held in a variable: the closures below must not keep the whole dataset
  // (card events, app sessions) alive, only the four served tables.
  const tables = loadTables(options.data ?? dataset.generate(cfg.size));
  const doc = openApiDocument(cfg);
  const docHtml = docsPage(doc);

  const faults: FaultSettings & { seed: number } = {
    rate: cfg.faultRate,
    slowMaxMs: cfg.faultSlowMaxMs,
    seed: cfg.faultSeed,
  };
  let rng = new Random(faults.seed);
  // Consecutive faults per request (method + URL): the same request is faulted at most
  // MAX_CONSECUTIVE_FAULTS times in a row, so a client that retries always gets through.
  const faultStreaks = new Map<string, number>();
  const buckets = new Map<string, Bucket>();
  const log = new RingBuffer<LoggedRequest & { ms: number }>(cfg.requestLogSize);
  const notes = new WeakMap<FastifyRequest, Note>();
  const secrets = [cfg.apiKey, cfg.adminKey ?? ''];
  let seq = 0;

  const app = Fastify({
    logger: options.logger ?? false,
    // One line per request comes from the onResponse hook below, with the URL redacted.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
  });

  const note = (request: FastifyRequest): Note => {
    let n = notes.get(request);
    if (!n) {
      n = { auth: null, fault: null };
      notes.set(request, n);
    }
    return n;
  };

  function drawFault(request: FastifyRequest, resource: ResourceName, rows: number): Fault | null {
    const key = `${request.method} ${request.url}`;
    const streak = faultStreaks.get(key) ?? 0;
    const fault = streak >= MAX_CONSECUTIVE_FAULTS ? null : decideFault(rng, faults, { resource, rows });
    faultStreaks.delete(key); // re-inserted last: Map order then evicts the stalest first
    if (fault) {
      faultStreaks.set(key, streak + 1);
      if (faultStreaks.size > MAX_TRACKED_REQUESTS) faultStreaks.delete(faultStreaks.keys().next().value!);
    }
    return fault;
  }

  /** Answers an error fault, or waits out a slow one; returns true when the reply was sent. */
  async function applyFault(
    request: FastifyRequest,
    reply: FastifyReply,
    fault: Fault | null,
  ): Promise<boolean> {
    if (!fault || fault.kind === 'malformed') return false;
    if (fault.kind === 'slow') {
      note(request).fault = fault;
      await sleep(fault.delay_ms);
      return false;
    }
    note(request).fault = fault;
    const detail = {
      500: 'The server hit an unexpected error. Retry the request.',
      502: 'An upstream service returned an invalid response. Retry the request.',
      503: 'The service is temporarily unavailable. Retry after the Retry-After delay.',
    }[fault.status];
    sendProblem(reply, {
      status: fault.status,
      detail,
      headers: fault.status === 503 ? { 'retry-after': '1' } : {},
    });
    return true;
  }

  app.addHook('onRequest', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff').header('cache-control', 'no-store');
  });

  app.addHook('onResponse', async (request, reply) => {
    if (request.url === '/healthz' || request.url.startsWith('/healthz?')) return;
    const n = notes.get(request);
    const now = clock();
    const entry = {
      seq: ++seq,
      time: new Date(now).toISOString(),
      method: request.method,
      path: redactUrl(request.url, secrets),
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 10) / 10,
      auth: n?.auth ?? null,
      fault: n?.fault ?? null,
      client: request.ip,
    };
    log.push({ ...entry, ms: now });
    // pino writes its own `time`; a second one would make a duplicate JSON key.
    const { time: _time, ...line } = entry;
    request.log.info(line, 'request');
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    sendProblem(reply, { status, detail: status >= 500 ? 'Internal error' : error.message });
  });
  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, {
      status: 404,
      detail: `No endpoint ${request.method} ${request.url.split('?')[0]}; see /docs`,
    });
  });

  app.get('/healthz', async () => ({ status: 'ok', dataset: datasetKey(dataset) }));
  app.get('/openapi.json', async () => doc);
  app.get('/docs', async (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(docHtml),
  );

  app.register(
    async (v1) => {
      v1.addHook('onRequest', async (request, reply) => {
        const key = presentedKey(request, 'x-api-key');
        if (key === null || !sameSecret(key, cfg.apiKey)) {
          note(request).auth = key === null ? 'missing' : 'invalid';
          return sendProblem(reply, {
            status: 401,
            detail:
              key === null
                ? 'Missing API key: send it as X-API-Key: <key> or Authorization: Bearer <key>'
                : 'Invalid API key',
            headers: { 'www-authenticate': 'Bearer realm="data-api"' },
          });
        }
        note(request).auth = 'ok';
        const bucketKey = digest(key).toString('hex');
        const d = takeToken(buckets.get(bucketKey), clock(), cfg.rateLimitPerMinute);
        buckets.set(bucketKey, d.bucket);
        reply.headers({
          'ratelimit-limit': String(cfg.rateLimitPerMinute),
          'ratelimit-remaining': String(d.remaining),
          'ratelimit-reset': String(d.reset),
          'ratelimit-policy': `${cfg.rateLimitPerMinute};w=60`,
        });
        if (!d.allowed) {
          return sendProblem(reply, {
            status: 429,
            detail: `Rate limit of ${cfg.rateLimitPerMinute} requests per minute exceeded; retry after ${d.retryAfter} s`,
            headers: { 'retry-after': String(d.retryAfter) },
          });
        }
      });

      for (const resource of RESOURCE_NAMES) {
        const table = tables[resource];
        v1.get(`/${resource}`, async (request, reply) => {
          const q = request.url.indexOf('?');
          const parsed = parseListQuery(q < 0 ? '' : request.url.slice(q + 1), resource, cfg.pageSize);
          if (!parsed.ok) return badRequest(reply, parsed.invalid);
          const slice = selectPage(table.keys, parsed.value);
          let rows = table.rows.slice(slice.start, slice.end);
          const fault = drawFault(request, resource, rows.length);
          if (await applyFault(request, reply, fault)) return reply;
          if (fault?.kind === 'malformed') {
            const broken = new Map(fault.rows.map((r) => [r.index, r.corruption]));
            rows = rows.map((row, i) => (broken.has(i) ? corruptRow(row, broken.get(i)!) : row));
            note(request).fault = {
              kind: 'malformed',
              rows: fault.rows.map((r) => ({
                id: table.rows[slice.start + r.index]![RESOURCES[resource]],
                ...r.corruption,
              })),
            };
          }
          const body: Record<string, unknown> = {
            data: rows,
            next_cursor: slice.next ? encodeCursor(resource, slice.next) : null,
          };
          if (slice.total !== undefined) {
            body.total = slice.total;
            body.next_offset = slice.nextOffset;
          }
          return reply.send(body);
        });

        v1.get<{ Params: { id: string } }>(`/${resource}/:id`, async (request, reply) => {
          const { id } = request.params;
          if (!/^[1-9]\d{0,14}$/.test(id)) {
            return badRequest(reply, [{ name: 'id', reason: 'id must be a positive integer' }]);
          }
          if (await applyFault(request, reply, drawFault(request, resource, 0))) return reply;
          const row = table.byId.get(Number(id));
          if (!row)
            return sendProblem(reply, { status: 404, detail: `${SINGULAR[resource]} ${id} not found` });
          return reply.send(row);
        });
      }
    },
    { prefix: '/v1' },
  );

  app.register(
    async (admin) => {
      admin.addHook('onRequest', async (request, reply) => {
        if (!cfg.adminKey) {
          return sendProblem(reply, {
            status: 404,
            detail: `No endpoint ${request.method} ${request.url.split('?')[0]}`,
          });
        }
        const key = presentedKey(request, 'x-admin-key');
        if (key === null || !sameSecret(key, cfg.adminKey)) {
          note(request).auth = key === null ? 'missing' : 'invalid';
          return sendProblem(reply, {
            status: 401,
            detail: 'Admin endpoints need the admin key: X-Admin-Key: <key> or Authorization: Bearer <key>',
          });
        }
        note(request).auth = 'ok';
      });

      admin.get('/requests', async (request, reply) => {
        const params = new URLSearchParams(request.url.split('?')[1] ?? '');
        const invalid: InvalidParam[] = [];
        const sinceRaw = params.get('since');
        const since = sinceRaw === null ? null : parseTimestamp(sinceRaw);
        if (sinceRaw !== null && since === null)
          invalid.push({ name: 'since', reason: `since must be ${TIMESTAMP_HINT}` });
        const limitRaw = params.get('limit') ?? '1000';
        const limit = /^\d{1,5}$/.test(limitRaw) ? Number(limitRaw) : 0;
        if (limit < 1 || limit > 10_000)
          invalid.push({ name: 'limit', reason: 'limit must be an integer between 1 and 10000' });
        if (invalid.length) return badRequest(reply, invalid);
        const entries = log.toArray().filter((e) => since === null || e.ms > since);
        // The most recent `limit`, still oldest first so the list reads as a timeline.
        return reply.send({
          data: entries.slice(-limit).map(({ ms: _ms, ...e }) => e),
          capacity: log.capacity,
        });
      });

      const faultBody = z.strictObject({
        rate: z.number().min(0).max(0.5),
        slow_max_ms: z.number().int().min(0).max(60_000).optional(),
        seed: z
          .number()
          .int()
          .min(0)
          .max(2 ** 32 - 1)
          .optional(),
      });
      const current = () => ({ rate: faults.rate, slow_max_ms: faults.slowMaxMs, seed: faults.seed });
      admin.get('/faults', async () => current());
      admin.post('/faults', async (request, reply) => {
        const res = faultBody.safeParse(request.body);
        if (!res.success) {
          return badRequest(
            reply,
            res.error.issues.map((i) => {
              const name = String(i.path[0] ?? (i.code === 'unrecognized_keys' ? i.keys.join(', ') : 'body'));
              return { name, reason: `${name}: ${i.message}` };
            }),
          );
        }
        faults.rate = res.data.rate;
        if (res.data.slow_max_ms !== undefined) faults.slowMaxMs = res.data.slow_max_ms;
        if (res.data.seed !== undefined) {
          faults.seed = res.data.seed;
          rng = new Random(faults.seed);
        }
        faultStreaks.clear();
        request.log.info({ faults: current() }, 'fault settings changed');
        return reply.send(current());
      });
    },
    { prefix: '/admin' },
  );

  return app;
}
