import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CheckSpec,
  collectionSourceDatabase,
  type GradeResponse,
  DB_CREDENTIAL_KEYS as KEYS,
  type SeedPlan,
} from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';
import { runSeed } from '../../sandboxes/src/seeder/run.ts';
import { DataApiProcess } from '../harness/data-api.ts';
import { credentialsDir } from '../harness/grader.ts';

/**
 * The `check` grader of the data-engineer sample's "collect and load" task, on a real PostgreSQL
 * seeded by the seed Job's code and the real data API process: the test collects from the API as a
 * candidate would and loads `work`; the grade server runs the sample's own checks. An empty work
 * area, a copy of the warehouse, duplicates and a missing key each fail the check they should,
 * and a correct load passes.
 */
const server = inject('postgres');
const DB = `checks_${process.pid}`;
const API_KEY = 'check-grader-api-key-0123456789';
const TOKEN = 'check-grader-token-0123456789abc';
const creds = {
  [KEYS.database]: DB,
  [KEYS.username]: 'candidate',
  [KEYS.password]: 'candidate-pw',
  [KEYS.adminUsername]: server.user,
  [KEYS.adminPassword]: server.password,
  [KEYS.graderUsername]: 'grader',
  [KEYS.graderPassword]: 'grader-pw',
};
const dataApi = new DataApiProcess();
const dirs: string[] = [];
let app: FastifyInstance;
let candidate: pg.Client;
let plan: SeedPlan;

const sample = parse(
  readFileSync(
    join(import.meta.dirname, '..', '..', 'charts', 'epreuve', 'samples', 'data-engineer.yaml'),
    'utf8',
  ),
) as { spec: { tasks: Array<{ id: string; grader?: { check?: { checks: CheckSpec[] } } }> } };
const CHECKS = sample.spec.tasks
  .find((t) => t.id === 'collect-and-load')!
  .grader!.check!.checks.map(({ name, sql, expect, hint }) => ({ name, sql, expect, hint }));
const NAMES = CHECKS.map((c) => c.name);

type Row = Record<string, unknown>;
/** Every row of a resource, page after page, as a careful client collects it. */
async function collect(resource: 'customers' | 'transactions'): Promise<Row[]> {
  const rows: Row[] = [];
  let cursor: string | null = '';
  for (let page = 0; cursor !== null && page < 1000; page++) {
    const url = `${dataApi.url}/v1/${resource}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await fetch(url, { headers: { 'x-api-key': API_KEY } });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { data: Row[]; next_cursor: string | null };
    rows.push(...body.data);
    cursor = body.next_cursor;
  }
  return rows;
}

async function runChecks(): Promise<GradeResponse> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/check',
    headers: { authorization: `Bearer ${TOKEN}` },
    payload: { sandbox: 'warehouse', checks: CHECKS },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}
/** Runs checks of the test's own on the candidate's work area. */
async function runOwnChecks(checks: CheckSpec[]): Promise<GradeResponse> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/check',
    headers: { authorization: `Bearer ${TOKEN}` },
    payload: { sandbox: 'warehouse', checks },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}
const outcome = (r: GradeResponse, name: string) => r.checks!.find((c) => c.name === name)!;
const failing = (r: GradeResponse) => r.checks!.filter((c) => !c.pass).map((c) => c.name);

const DDL = (keys: { customers: boolean; transactions: boolean }) => `
  CREATE TABLE work.customers (customer_id bigint ${keys.customers ? 'PRIMARY KEY' : ''}, email text, country text);
  CREATE TABLE work.transactions (
    transaction_id bigint ${keys.transactions ? 'PRIMARY KEY' : ''}, account_id bigint, amount numeric(12,2),
    currency text, booked_at timestamptz, ingested_at timestamptz, reference text)`;

/** Loads the collected rows; `dedupe` keeps one movement per reference (the first ingested). */
async function load(
  customers: Row[],
  transactions: Row[],
  o: { dedupe: boolean; keys?: { customers: boolean; transactions: boolean } },
) {
  await candidate.query(DDL(o.keys ?? { customers: true, transactions: true }));
  await candidate.query(
    'INSERT INTO work.customers SELECT * FROM json_to_recordset($1) AS r(customer_id bigint, email text, country text)',
    [JSON.stringify(customers)],
  );
  const kept = o.dedupe
    ? [
        ...new Map(
          [...transactions]
            .sort((a, b) => Number(b.transaction_id) - Number(a.transaction_id))
            .map((t) => [t.reference, t]),
        ).values(),
      ]
    : transactions;
  await candidate.query(
    `INSERT INTO work.transactions SELECT * FROM json_to_recordset($1) AS r(transaction_id bigint, account_id bigint,
       amount numeric(12,2), currency text, booked_at timestamptz, ingested_at timestamptz, reference text)`,
    [JSON.stringify(kept)],
  );
}

let customers: Row[];
let transactions: Row[];

beforeAll(async () => {
  const c = new pg.Client({ ...server, database: 'postgres' });
  await c.connect();
  await c.query(`CREATE DATABASE ${DB}`);
  await c.end();
  const all = credentialsDir(creds);
  dirs.push(all);
  plan = [
    {
      name: 'warehouse',
      kind: 'postgres',
      host: server.host,
      port: server.port,
      dataset: 'retail@1',
      credentials: all,
      hiddenVariants: 0,
      collectionSource: { dataset: 'retail@1', size: 'small' },
    },
  ];
  await runSeed(plan, { size: 'small', waitTimeoutMs: 10_000, log: () => {} });
  const graderOnly = credentialsDir({
    [KEYS.database]: DB,
    [KEYS.graderUsername]: 'grader',
    [KEYS.graderPassword]: 'grader-pw',
  });
  dirs.push(graderOnly);
  app = await buildGradeServer({
    plan: [
      { name: 'warehouse', kind: 'postgres', host: server.host, port: server.port, credentials: graderOnly },
    ],
    token: () => TOKEN,
  });
  await dataApi.start({ API_KEY, DATASET_SIZE: 'small', RATE_LIMIT_PER_MINUTE: '10000' });
  customers = await collect('customers');
  transactions = await collect('transactions');
  candidate = new pg.Client({ ...server, user: 'candidate', password: 'candidate-pw', database: DB });
  await candidate.connect();
}, 120_000);

beforeEach(async () => {
  // Everything a test planted in work (tables, views, functions, operators, types, collations)
  // goes with the schema; the seeder makes it again as the seed Job does.
  const admin = new pg.Client({ ...server, database: DB });
  await admin.connect();
  await admin.query('DROP SCHEMA work CASCADE');
  await admin.end();
  await runSeed(plan, { size: 'small', waitTimeoutMs: 10_000, log: () => {} });
});

afterAll(async () => {
  await candidate?.end();
  await app?.close();
  await dataApi.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the check grader on the data-engineer sample’s collect-and-load task', () => {
  it('the sample has the checks the task names', () =>
    expect(NAMES).toEqual([
      'customers-complete',
      'transactions-complete',
      'no-duplicate-transactions',
      'late-records-included',
      'primary-keys-declared',
    ]));

  it('the data API serves duplicates and late movements, none of them in the warehouse', async () => {
    const refs = transactions.map((t) => t.reference);
    expect(new Set(refs).size).toBeLessThan(refs.length);
    const lateRows = transactions.filter(
      (t) => Date.parse(String(t.ingested_at)) - Date.parse(String(t.booked_at)) >= 3 * 86_400_000,
    );
    expect(lateRows.length).toBeGreaterThan(0);
    const warehouse = await candidate.query<{ reference: string }>(
      'SELECT reference FROM retail.transactions WHERE reference = ANY($1)',
      [refs.slice(0, 200)],
    );
    expect(warehouse.rowCount).toBe(0);
  });

  it('an empty work schema fails, naming every check', async () => {
    const r = await runChecks();
    expect(r.pass).toBe(false);
    expect(failing(r)).toEqual(NAMES);
    for (const name of NAMES) expect(r.hint).toContain(`${name}:`);
    expect(r.hint).toMatch(/work\.customers.* does not exist/);
  });

  it('a correct load from the data API passes every check', async () => {
    await load(customers, transactions, { dedupe: true });
    const r = await runChecks();
    expect(failing(r), r.explanation).toEqual([]);
    expect(r.pass).toBe(true);
    expect(r.hint).toBe('All 5 checks pass.');
  });

  it('a copy of the warehouse (INSERT … SELECT FROM retail) fails the completeness checks, leaking no value', async () => {
    await candidate.query(DDL({ customers: true, transactions: true }));
    await candidate.query(
      'INSERT INTO work.customers SELECT customer_id, email, country FROM retail.customers',
    );
    await candidate.query(`INSERT INTO work.transactions
      SELECT DISTINCT ON (reference) transaction_id, account_id, amount, currency, booked_at, ingested_at, reference
      FROM retail.transactions ORDER BY reference, transaction_id`);
    const r = await runChecks();
    expect(r.pass).toBe(false);
    expect(failing(r)).toEqual(['customers-complete', 'transactions-complete', 'late-records-included']);
    // Staff see both fingerprints; the candidate sees the check names and hints only.
    const expectedPrint = /[0-9a-f]{32}/;
    expect(r.explanation).toMatch(expectedPrint);
    expect(r.hint).not.toMatch(expectedPrint);
    expect(r.hint).not.toMatch(/\d{2,}/);
  });

  it('movements loaded twice fail no-duplicate-transactions, and only it', async () => {
    await load(customers, transactions, { dedupe: false });
    const r = await runChecks();
    expect(failing(r)).toEqual(['no-duplicate-transactions']);
    expect(r.hint).toMatch(
      /^1 of 5 checks fail: no-duplicate-transactions\. no-duplicate-transactions: Some movements appear more than once/,
    );
  });

  it('a row-level security policy that hides the duplicates from the grader does not pass: the check fails', async () => {
    await load(customers, transactions, { dedupe: false });
    await candidate.query(`
      ALTER TABLE work.transactions ENABLE ROW LEVEL SECURITY;
      ALTER TABLE work.transactions FORCE ROW LEVEL SECURITY;
      CREATE POLICY everyone_else ON work.transactions FOR SELECT USING (current_user <> 'grader');
      GRANT SELECT ON work.transactions TO PUBLIC`);
    const r = await runChecks();
    expect(failing(r)).toContain('no-duplicate-transactions');
    expect(r.checks!.find((c) => c.name === 'no-duplicate-transactions')).toMatchObject({
      pass: false,
      error: 'Forbidden',
    });
    expect(r.checks!.find((c) => c.name === 'no-duplicate-transactions')!.explanation).toMatch(
      /row-level security/,
    );
  });

  it('a missing primary key fails primary-keys-declared, and only it', async () => {
    await load(customers, transactions, { dedupe: true, keys: { customers: false, transactions: true } });
    const r = await runChecks();
    expect(failing(r)).toEqual(['primary-keys-declared']);
    expect(r.checks!.find((c) => c.name === 'primary-keys-declared')!.explanation).toMatch(/\(customers\)/);
  });

  it('missing late movements fail late-records-included (and completeness)', async () => {
    const onTime = transactions.filter(
      (t) => Date.parse(String(t.ingested_at)) - Date.parse(String(t.booked_at)) < 3 * 86_400_000,
    );
    await load(customers, onTime, { dedupe: true });
    const r = await runChecks();
    expect(failing(r)).toEqual(['transactions-complete', 'late-records-included']);
  });

  it('refuses a bad request naming the field, an unknown or non-PostgreSQL sandbox, and a wrong token', async () => {
    const post = (payload: unknown, token = TOKEN) =>
      app.inject({
        method: 'POST',
        url: '/v1/check',
        headers: { authorization: `Bearer ${token}` },
        payload: payload as object,
      });
    const bad = await post({ sandbox: 'warehouse', checks: [] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toMatch(/^body\.checks: /);
    expect((await post({ sandbox: 'events', checks: CHECKS })).statusCode).toBe(404);
    expect(
      (await post({ sandbox: 'warehouse', checks: CHECKS }, 'wrong-token-0123456789abcdefghi')).statusCode,
    ).toBe(401);
  });

  it('a sameAsSource query that does not run is the template’s mistake: 422 naming the check', async () => {
    await load(customers, transactions, { dedupe: true }); // the check's own query runs first
    const res = await app.inject({
      method: 'POST',
      url: '/v1/check',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: {
        sandbox: 'warehouse',
        checks: [{ ...CHECKS[0]!, expect: { sameAsSource: 'SELECT nope FROM retail.customers' } }],
      },
    });
    expect(res.statusCode).toBe(422);
    expect(res.json().detail).toMatch(/sameAsSource query of check customers-complete does not run: .*nope/);
  });

  it('a sameAsSource query that runs out of time is a 503 to retry, not a grade', async () => {
    await load(customers, transactions, { dedupe: true });
    const dir = credentialsDir({
      [KEYS.database]: DB,
      [KEYS.graderUsername]: 'grader',
      [KEYS.graderPassword]: 'grader-pw',
    });
    dirs.push(dir);
    const hurried = await buildGradeServer({
      plan: [{ name: 'warehouse', kind: 'postgres', host: server.host, port: server.port, credentials: dir }],
      token: () => TOKEN,
      limits: { timeoutMs: 300 },
    });
    try {
      const res = await hurried.inject({
        method: 'POST',
        url: '/v1/check',
        headers: { authorization: `Bearer ${TOKEN}` },
        payload: {
          sandbox: 'warehouse',
          checks: [{ ...CHECKS[0]!, expect: { sameAsSource: 'SELECT pg_sleep(2)::text' } }],
        },
      });
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json().detail).toMatch(/check customers-complete .*stopped after 0\.3 s/);
    } finally {
      await hurried.close();
    }
  });

  it('a database that cannot be reached is a 503 to retry, not a grade', async () => {
    const dir = credentialsDir({
      [KEYS.database]: `${DB}_missing`,
      [KEYS.graderUsername]: 'grader',
      [KEYS.graderPassword]: 'grader-pw',
    });
    dirs.push(dir);
    const other = await buildGradeServer({
      plan: [{ name: 'warehouse', kind: 'postgres', host: server.host, port: server.port, credentials: dir }],
      token: () => TOKEN,
    });
    try {
      const res = await other.inject({
        method: 'POST',
        url: '/v1/check',
        headers: { authorization: `Bearer ${TOKEN}` },
        payload: { sandbox: 'warehouse', checks: CHECKS },
      });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
    } finally {
      await other.close();
    }
  });

  it('the collection source is out of the candidate’s reach: they cannot connect to it', async () => {
    const c = new pg.Client({
      ...server,
      user: 'candidate',
      password: 'candidate-pw',
      database: collectionSourceDatabase(DB),
    });
    c.on('error', () => {});
    await expect(c.connect()).rejects.toThrow(/permission denied for database/);
    await c.end().catch(() => {});
  });

  it('a view in work that reads nothing it may not read still cannot pass: checks never run where the source is', async () => {
    // A view over the warehouse, made to look like a load: the grader reads it as the candidate's
    // work, and the source data lives in another database the view cannot name.
    await candidate.query(`CREATE VIEW work.customers WITH (security_invoker = true) AS
      SELECT customer_id, email, country FROM retail.customers`);
    const r = await runChecks();
    expect(failing(r)).toContain('customers-complete');
  });
});

/**
 * What a candidate plants in `work` runs with the rights of whoever reads it: a check must read
 * their data, never run their code. Each test plants what would pass a check it should fail.
 */
describe('checks read the candidate’s data, never run the candidate’s code', () => {
  const LOWERCASE: CheckSpec = {
    name: 'emails-lowercase',
    sql: 'SELECT email FROM work.customers WHERE email <> lower(email)',
    expect: { noRows: true },
    hint: 'Store emails in lower case.',
  };
  const UNIQUE: CheckSpec = {
    name: 'emails-unique',
    sql: 'SELECT a.email FROM work.customers a JOIN work.customers b ON a.email = b.email AND a.customer_id <> b.customer_id',
    expect: { noRows: true },
    hint: 'One customer per email.',
  };
  const twoJanes = async (emailType: string) => {
    await candidate.query(
      `CREATE TABLE work.customers (customer_id bigint PRIMARY KEY, email ${emailType}, country text)`,
    );
    await candidate.query(
      "INSERT INTO work.customers VALUES (1, 'Jane@Example.org', 'FR'), (2, 'Jane@Example.org', 'FR')",
    );
  };

  it('a function or operator of theirs overloading a built-in is not picked up: the checks fail', async () => {
    await twoJanes('varchar(200)');
    // Exact matches for varchar, which pg_catalog only serves through text: with `work` on the
    // check's search_path these win over the built-ins.
    await candidate.query(`
      CREATE FUNCTION work.lower(varchar) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1::text';
      CREATE FUNCTION work.never(varchar, varchar) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false';
      CREATE OPERATOR work.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = work.never)`);
    const r = await runOwnChecks([LOWERCASE, UNIQUE]);
    expect(failing(r), r.explanation).toEqual(['emails-lowercase', 'emails-unique']);
    expect(outcome(r, 'emails-lowercase').explanation).toMatch(/Expected no rows, got 2/);
    expect(outcome(r, 'emails-unique').explanation).toMatch(/Expected no rows, got 2/);
  });

  it('a type of their own (its cast runs as the grader) is refused, naming the column, in English and French', async () => {
    await candidate.query(`
      CREATE TYPE work.boxed AS (v text);
      CREATE FUNCTION work.unboxed(work.boxed) RETURNS text LANGUAGE sql VOLATILE AS 'SELECT gen_random_uuid()::text';
      CREATE CAST (work.boxed AS text) WITH FUNCTION work.unboxed(work.boxed);
      CREATE TABLE work.customers (customer_id bigint PRIMARY KEY, email work.boxed);
      INSERT INTO work.customers VALUES (1, ROW('jane@example.org')), (2, ROW('jane@example.org'))`);
    // The cast makes every email distinct to whoever reads it: the duplicates would not show.
    const r = await runOwnChecks([
      {
        name: 'emails-unique',
        sql: 'SELECT email::text FROM work.customers GROUP BY 1 HAVING count(*) > 1',
        expect: { noRows: true },
        hint: 'One customer per email.',
      },
    ]);
    expect(failing(r)).toEqual(['emails-unique']);
    expect(outcome(r, 'emails-unique')).toMatchObject({ pass: false, error: 'Forbidden' });
    expect(r.hint).toMatch(/column work\.customers\.email has type work\.boxed, not a built-in type/);
    expect(r.hintFr).toMatch(/la colonne work\.customers\.email est de type work\.boxed/);
  });

  it('a collation of their own (equal when the case differs) is refused, naming the column', async () => {
    await candidate.query(
      "CREATE COLLATION work.anycase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
    );
    await twoJanes('text COLLATE work.anycase');
    const r = await runOwnChecks([LOWERCASE]);
    expect(outcome(r, 'emails-lowercase')).toMatchObject({ pass: false, error: 'Forbidden' });
    expect(r.hint).toMatch(/column work\.customers\.email uses collation work\.anycase/);
    expect(r.hintFr).toMatch(/la colonne work\.customers\.email utilise la collation work\.anycase/);
  });

  it('a view that shows the grader other rows than are there is refused: checks read tables', async () => {
    await load(customers, transactions, { dedupe: false });
    await candidate.query(`
      ALTER TABLE work.transactions RENAME TO transactions_loaded;
      CREATE VIEW work.transactions AS SELECT * FROM work.transactions_loaded WHERE current_user <> 'grader';
      GRANT SELECT ON work.transactions TO grader`);
    const r = await runChecks();
    expect(failing(r)).toContain('no-duplicate-transactions');
    expect(outcome(r, 'no-duplicate-transactions')).toMatchObject({ pass: false, error: 'Forbidden' });
    expect(r.hint).toMatch(/work\.transactions is a view: checks read tables only/);
    expect(r.hintFr).toMatch(/work\.transactions est une vue/);
  });

  it('a domain over a built-in type is the candidate’s design, not code: checks run on it', async () => {
    await candidate.query("CREATE DOMAIN work.email AS text CHECK (VALUE LIKE '%@%')");
    await twoJanes('work.email');
    const r = await runOwnChecks([LOWERCASE]);
    expect(outcome(r, 'emails-lowercase')).toMatchObject({ pass: false });
    expect(outcome(r, 'emails-lowercase').error).toBeUndefined();
    await candidate.query('UPDATE work.customers SET email = lower(email)');
    expect((await runOwnChecks([LOWERCASE])).pass).toBe(true);
  });
});
