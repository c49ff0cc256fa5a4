/**
 * The served resources and how a list endpoint pages through them: tables sorted by
 * (updated_at, id), opaque cursors, RFC 3339 timestamps, list query parsing and page selection.
 * Pure functions, unit-tested in pagination.test.ts.
 */

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
/** Singular names, for messages and the OpenAPI schema names. */
export const SINGULAR: Record<ResourceName, string> = {
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
/** Parameter names that look like a credential: refused here with a hint, redacted in the request log. */
export const SENSITIVE_PARAM = /key|token|secret|password|auth/i;
export const TIMESTAMP_HINT = 'an RFC 3339 timestamp such as 2025-03-01T00:00:00Z (send a + offset as %2B)';

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
