import { hiddenVariantDatabase } from '@epreuve/crds';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Dataset, resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import type { Size } from '../../sandboxes/src/datasets/retail/v1.ts';
import { copyRows } from '../../sandboxes/src/seeder/copy.ts';
import { seedHiddenVariants, seedPostgres } from '../../sandboxes/src/seeder/postgres.ts';
import { eventually } from '../harness/kube.ts';

/**
 * The seeder loads with COPY. The data must be what the batched INSERTs it replaced loaded, row
 * for row: each table is loaded both ways into the real PostgreSQL, and row counts and a checksum
 * of every row's text are compared (the candidate's standard data and a hidden variant).
 */
const server = inject('postgres');
const PREFIX = `seeder_copy_${process.pid}`;
const dataset = resolveDataset('retail@1');
const candidate = { username: 'candidate', password: 'candidate-pw-1' };
const grader = { username: 'grader', password: 'grader-pw-1' };
const created: string[] = [];

async function withClient<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ ...server, database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function createDatabase(name: string): Promise<string> {
  await withClient('postgres', (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  created.push(name);
  return name;
}

/** The seeder's load before COPY (1 000-row multi-VALUES INSERTs), kept here as the reference. */
async function insertReference(database: string, d: Dataset, size: Size, variant: number): Promise<number> {
  const data = d.generate(size, variant);
  const started = Date.now(); // the load only, as the seeder's own log line times it
  await withClient(database, async (c) => {
    await c.query(d.postgres.ddl);
    for (const { table, columns } of d.postgres.tables) {
      const items = data[table] as unknown as Array<Record<string, unknown>>;
      for (let i = 0; i < items.length; i += 1000) {
        const batch = items.slice(i, i + 1000);
        const tuples = batch.map(
          (_, r) => `(${columns.map((_, k) => `$${r * columns.length + k + 1}`).join(', ')})`,
        );
        await c.query(
          `INSERT INTO ${d.postgres.schema}.${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}`,
          batch.flatMap((item) => columns.map((col) => item[col])),
        );
      }
    }
  });
  return Date.now() - started;
}

/** Per table: row count and md5 of every row's text in primary-key order. */
async function fingerprint(database: string): Promise<Record<string, { rows: number; md5: string }>> {
  return withClient(database, async (c) => {
    await c.query(`SET TIME ZONE 'UTC'`);
    const out: Record<string, { rows: number; md5: string }> = {};
    for (const { table } of dataset.postgres.tables) {
      const r = await c.query(
        `SELECT count(*)::int AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS md5
           FROM retail.${pg.escapeIdentifier(table)} t`,
      );
      out[table] = r.rows[0];
    }
    return out;
  });
}

/** Every constraint and index of the dataset's schema, as PostgreSQL would re-create them. */
async function schemaOf(database: string): Promise<string[]> {
  return withClient(database, async (c) => {
    const { rows } = await c.query(
      `SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS d
         FROM pg_constraint WHERE connamespace = 'retail'::regnamespace
       UNION ALL
       SELECT pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class k ON k.oid = i.indexrelid
        WHERE k.relnamespace = 'retail'::regnamespace AND k.relname <> '_epreuve_seed'
       ORDER BY 1`,
    );
    return rows.map((r) => r.d as string);
  });
}

beforeAll(async () => {
  // Leftovers of an interrupted run would make CREATE DATABASE fail.
  await withClient('postgres', async (c) => {
    const { rows } = await c.query(`SELECT datname FROM pg_database WHERE datname LIKE 'seeder_copy_%'`);
    for (const { datname } of rows)
      await c.query(`DROP DATABASE ${pg.escapeIdentifier(datname)} WITH (FORCE)`);
  });
});

afterAll(async () => {
  await withClient('postgres', async (c) => {
    for (const name of created)
      await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  });
});

describe('the seeder loads PostgreSQL with COPY', () => {
  it('loads the standard dataset row for row as the batched INSERTs did (timings printed, not asserted)', async () => {
    const viaCopy = await createDatabase(`${PREFIX}_copy`);
    const viaInsert = await createDatabase(`${PREFIX}_insert`);
    const log: string[] = [];
    const started = Date.now();
    const res = await seedPostgres(
      { ...server, database: viaCopy },
      { dataset, size: 'standard', candidate, grader, log: (l) => log.push(l) },
    );
    const copyMs = Date.now() - started;
    const insertMs = await insertReference(viaInsert, dataset, 'standard', 0);

    expect(res.loaded).toBe(true);
    const expected = dataset.generate('standard', 0);
    for (const { table } of dataset.postgres.tables) expect(res.rows[table]).toBe(expected[table].length);
    expect(res.rows.transactions).toBeGreaterThan(50_000);
    const [a, b] = [await fingerprint(viaCopy), await fingerprint(viaInsert)];
    expect(a.transactions!.rows).toBe(expected.transactions.length);
    expect(a).toEqual(b);
    expect(log.some((l) => /loaded retail\.transactions: \d+ rows in \d+ ms/.test(l))).toBe(true);
    const copyLoad = log.find((l) => /loaded retail with its indexes and foreign keys in \d+ ms/.test(l));
    expect(copyLoad).toBeDefined();
    console.log(
      `standard dataset: ${copyLoad} (seed with generation, roles and ANALYZE: ${copyMs} ms); batched INSERTs: ${insertMs} ms`,
    );
    // Every loaded table was analysed (the planner has statistics from the start); a backend
    // reports its statistics as it exits, so they may take a moment to show.
    const analysed = () =>
      withClient(viaCopy, async (c) =>
        (
          await c.query(
            `SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'retail' AND last_analyze IS NOT NULL ORDER BY relname`,
          )
        ).rows.map((r) => r.relname as string),
      );
    const tables = dataset.postgres.tables.map((t) => t.table).sort();
    await eventually(async () => expect(await analysed()).toEqual(tables), 10_000);
    // The foreign keys and indexes dropped for the load are back, as the DDL made them.
    expect(await schemaOf(viaCopy)).toEqual(await schemaOf(viaInsert));
    expect((await schemaOf(viaCopy)).filter((d) => /FOREIGN KEY|CREATE INDEX/.test(d))).toHaveLength(6); // 4 foreign keys, 2 indexes
  }, 180_000);

  it('loads a hidden variant as the batched INSERTs did', async () => {
    const base = await createDatabase(`${PREFIX}_hv`);
    created.push(hiddenVariantDatabase(base, 1));
    const admin = { ...server, database: base };
    await seedPostgres(admin, { dataset, size: 'small', candidate, grader });
    const [name] = await seedHiddenVariants(admin, { dataset, count: 1, candidate, grader });
    expect(name).toBe(hiddenVariantDatabase(base, 1));
    const reference = await createDatabase(`${PREFIX}_hv_insert`);
    await insertReference(reference, dataset, 'small', 1);
    const [a, b] = [await fingerprint(name!), await fingerprint(reference)];
    expect(a).toEqual(b);
    // Another seed than the candidate's data, or it would not be hidden.
    expect(a).not.toEqual(await fingerprint(base));
  }, 120_000);

  it('round-trips text COPY could mistake for its own syntax', async () => {
    const db = await createDatabase(`${PREFIX}_odd`);
    const values = ['tab\there', 'line\nbreak', 'cr\rhere', 'back\\slash', '\\N', '', 'Zoë', null];
    const stored = await withClient(db, async (c) => {
      await c.query('CREATE SCHEMA s; CREATE TABLE s.t (id int PRIMARY KEY, v text, n numeric(12,2))');
      const n = await copyRows(
        c,
        's',
        't',
        ['id', 'v', 'n'],
        values.map((v, i) => ({ id: i, v, n: '12.50' })),
      );
      expect(n).toBe(values.length);
      return (await c.query('SELECT v, n::text FROM s.t ORDER BY id')).rows;
    });
    expect(stored.map((r) => r.v)).toEqual(values);
    expect(stored.every((r) => r.n === '12.50')).toBe(true);
  });

  it('fails naming the table when the server rejects a value, and leaves the transaction to roll back', async () => {
    const db = await createDatabase(`${PREFIX}_bad`);
    await withClient(db, async (c) => {
      await c.query(
        'CREATE SCHEMA s; CREATE TABLE s.t (id int PRIMARY KEY, amount numeric CHECK (amount > 0))',
      );
      await c.query('BEGIN');
      await expect(
        copyRows(
          c,
          's',
          't',
          ['id', 'amount'],
          [
            { id: 1, amount: '5' },
            { id: 2, amount: 'not a number' },
          ],
        ),
      ).rejects.toThrow(/COPY into s\.t failed: .*invalid input syntax for type numeric/);
      await c.query('ROLLBACK');
      expect((await c.query('SELECT count(*)::int AS n FROM s.t')).rows[0].n).toBe(0);
    });
  });
});
