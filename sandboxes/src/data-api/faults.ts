/**
 * Injected faults (when FAULT_RATE > 0): whether a data request fails and how (5xx, slow answer,
 * malformed rows), and the corrupted row copies a malformed page carries. Deterministic for a
 * given PRNG state; unit-tested in faults.test.ts.
 */
import type { Random } from '../datasets/random.ts';
import type { ResourceName, Row } from './pagination.ts';

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
