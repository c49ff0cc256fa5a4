import { collectionSourceDatabase, DATA_API_VARIANT, hiddenVariantDatabase } from '@epreuve/crds';
import pg from 'pg';
import { type Dataset, datasetKey } from '../datasets/catalog.ts';
import type { Size } from '../datasets/retail/v1.ts';
import { copyRows, withConstraintsDeferred } from './copy.ts';

export interface Credentials {
  username: string;
  password: string;
}

export interface PostgresSeedOptions {
  dataset: Dataset;
  size: Size;
  candidate: Credentials;
  grader: Credentials;
  log?: (line: string) => void;
  /** 0 (default): the candidate's data. Otherwise a hidden variant: another seed, grader-only. */
  variant?: number;
}

/**
 * Loads a dataset into PostgreSQL (with COPY, see copy.ts) and sets up the candidate and grader
 * roles. Idempotent: the load happens in one transaction that also writes a marker, so a re-run
 * finds the marker and loads nothing, and a crash leaves nothing half-loaded. Roles and grants are (re)applied every run.
 *
 * - `retail` (the dataset) is read-only for both roles;
 * - `work` belongs to the candidate, for the schema they design and the data they collect;
 * - the grader reads `retail` and `work`, in read-only transactions, with a timeout.
 */
export async function seedPostgres(
  admin: pg.ClientConfig,
  o: PostgresSeedOptions,
): Promise<{ loaded: boolean; rows: Record<string, number> }> {
  const log = o.log ?? (() => {});
  const client = new pg.Client(admin);
  // A database that restarts mid-seed fails the statement in flight (and the seed, retried by its Job).
  client.on('error', () => {});
  await client.connect();
  const schema = o.dataset.postgres.schema;
  const rows: Record<string, number> = {};
  let loaded = false;
  try {
    await client.query('BEGIN');
    // Two seeders at once (a Job retry racing a slow first pod) must not both load.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('epreuve-seed'))");
    const marker = await client.query(`SELECT to_regclass('${schema}._epreuve_seed') AS t`);
    const seeded = marker.rows[0].t
      ? (await client.query(`SELECT dataset, size FROM ${schema}._epreuve_seed`)).rows[0]
      : undefined;
    if (seeded) {
      if (seeded.dataset !== datasetKey(o.dataset)) {
        throw new Error(
          `this database already holds dataset ${seeded.dataset}; refusing to load ${datasetKey(o.dataset)} over it`,
        );
      }
      log(`postgres: ${seeded.dataset} (${seeded.size}) already loaded; nothing to do`);
    } else {
      let started = Date.now();
      // The tables only: the MongoDB collections are generated last and PostgreSQL has no use for them.
      const data = o.dataset.generate(o.size, o.variant ?? 0, 'tables');
      log(`postgres: generated ${datasetKey(o.dataset)} (${o.size}) in ${Date.now() - started} ms`);
      await client.query(o.dataset.postgres.ddl);
      started = Date.now();
      await withConstraintsDeferred(client, schema, async () => {
        for (const { table, columns } of o.dataset.postgres.tables) {
          const items = data[table] as unknown as Array<Record<string, unknown>>;
          const tableStarted = Date.now();
          // The count the server reports; the COPY test checks it against the generated rows.
          rows[table] = await copyRows(client, schema, table, columns, items);
          log(`postgres: loaded ${schema}.${table}: ${rows[table]} rows in ${Date.now() - tableStarted} ms`);
        }
      });
      log(`postgres: loaded ${schema} with its indexes and foreign keys in ${Date.now() - started} ms`);
      await client.query(
        `CREATE TABLE ${schema}._epreuve_seed (dataset text NOT NULL, size text NOT NULL, seeded_at timestamptz NOT NULL DEFAULT now())`,
      );
      await client.query(`INSERT INTO ${schema}._epreuve_seed (dataset, size) VALUES ($1, $2)`, [
        datasetKey(o.dataset),
        o.size,
      ]);
      started = Date.now();
      // The loaded tables only: a bare ANALYZE also walks every catalog table, seconds on a small CPU.
      await client.query(
        `ANALYZE ${o.dataset.postgres.tables.map((t) => `${schema}.${t.table}`).join(', ')}`,
      );
      log(`postgres: analyzed in ${Date.now() - started} ms`);
      loaded = true;
    }
    if (o.variant) await setUpHiddenRoles(client, admin.database ?? 'postgres', schema, o);
    else await setUpRoles(client, admin, schema, o);
    await client.query('COMMIT');
    log(
      o.variant
        ? `postgres: ${o.variant === DATA_API_VARIANT ? 'collection source' : `hidden variant ${o.variant}`} ready; only ${o.grader.username} may connect`
        : `postgres: roles ${o.candidate.username} (read ${schema}, owns work) and ${o.grader.username} (read-only) ready`,
    );
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await client.end();
  }
  return { loaded, rows };
}

/**
 * Loads each hidden variant into its own database on the same server (`hiddenVariantDatabase`):
 * same schema and names, so `retail.customers` still resolves for an answer, but another seed.
 * Only the grader may connect; the candidate cannot read, let alone change, it.
 */
export async function seedHiddenVariants(
  admin: pg.ClientConfig,
  o: Omit<PostgresSeedOptions, 'variant' | 'size'> & { count: number },
): Promise<string[]> {
  const base = admin.database ?? 'postgres';
  const names: string[] = [];
  for (let i = 1; i <= o.count; i++) {
    const name = hiddenVariantDatabase(base, i);
    await ensureDatabase(admin, name);
    await seedPostgres({ ...admin, database: name }, { ...o, size: 'small', variant: i });
    names.push(name);
  }
  return names;
}

/** Creates a database once: CREATE DATABASE cannot run in a transaction; a re-run finds it. */
async function ensureDatabase(admin: pg.ClientConfig, name: string): Promise<void> {
  const client = new pg.Client(admin);
  client.on('error', () => {}); // as above: the statement in flight fails instead
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!exists.rowCount) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/**
 * Loads what the template's data API serves (its variant and size of the dataset) into a database
 * only the grader may connect to (`collectionSourceDatabase`): the `check` grader compares a
 * candidate's collection with it, and no object the candidate makes can run where it is readable.
 */
export async function seedCollectionSource(
  admin: pg.ClientConfig,
  o: Omit<PostgresSeedOptions, 'variant'>,
): Promise<string> {
  const name = collectionSourceDatabase(admin.database ?? 'postgres');
  await ensureDatabase(admin, name);
  await seedPostgres({ ...admin, database: name }, { ...o, variant: DATA_API_VARIANT });
  return name;
}

async function setUpHiddenRoles(
  client: pg.Client,
  database: string,
  schema: string,
  o: PostgresSeedOptions,
): Promise<void> {
  const id = pg.escapeIdentifier;
  const grader = id(o.grader.username);
  const db = id(database);
  // The roles exist (the candidate's database is seeded first); only the grader gets in here.
  await client.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
  await client.query(`REVOKE ALL ON DATABASE ${db} FROM ${id(o.candidate.username)}`);
  await client.query(`GRANT CONNECT ON DATABASE ${db} TO ${grader}`);
  await client.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
  await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${grader}`);
  await client.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${grader}`);
  await client.query(`REVOKE SELECT ON ${schema}._epreuve_seed FROM ${grader}`);
  await limitGrader(client, grader, db);
}

/** The grader can only read, briefly, with bounded memory and temp files. */
async function limitGrader(client: pg.Client, grader: string, db: string): Promise<void> {
  // Answers run as the grader too, and a role reads its own sessions' query text in
  // pg_stat_activity: an answer could read a reference (or a hidden variant's) while it runs and
  // raise it in an error. Off, the grader's sessions report no query; the setting is a
  // superuser's, so no grader session can turn it back on. Role-wide: every database on the server.
  await client.query(`ALTER ROLE ${grader} SET track_activities = off`);
  await client.query(`ALTER ROLE ${grader} IN DATABASE ${db} SET default_transaction_read_only = on`);
  await client.query(`ALTER ROLE ${grader} IN DATABASE ${db} SET statement_timeout = '10s'`);
  await client.query(`ALTER ROLE ${grader} IN DATABASE ${db} SET work_mem = '16MB'`);
  await client.query(`ALTER ROLE ${grader} IN DATABASE ${db} SET temp_file_limit = '256MB'`);
  // The check guard reads the grader's own locks (guard.ts); PUBLIC no longer may (closeSideChannels).
  await client.query(`GRANT EXECUTE ON FUNCTION pg_catalog.pg_lock_status() TO ${grader}`);
}

async function setUpRoles(
  client: pg.Client,
  admin: pg.ClientConfig,
  schema: string,
  o: PostgresSeedOptions,
): Promise<void> {
  const database = admin.database ?? 'postgres';
  const id = pg.escapeIdentifier;
  const candidate = id(o.candidate.username);
  const grader = id(o.grader.username);
  for (const { username, password } of [o.candidate, o.grader]) {
    await client.query(
      `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${pg.escapeLiteral(username)}) THEN CREATE ROLE ${id(username)}; END IF; END $$`,
    );
    await client.query(
      `ALTER ROLE ${id(username)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT CONNECTION LIMIT 20 PASSWORD ${pg.escapeLiteral(password)}`,
    );
  }
  const db = id(database);
  await client.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
  await client.query(`GRANT CONNECT ON DATABASE ${db} TO ${candidate}, ${grader}`);
  await client.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
  await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${candidate}, ${grader}`);
  await client.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${candidate}, ${grader}`);
  await client.query(`REVOKE SELECT ON ${schema}._epreuve_seed FROM ${candidate}, ${grader}`);
  await client.query(`CREATE SCHEMA IF NOT EXISTS work AUTHORIZATION ${candidate}`);
  await client.query(`GRANT USAGE ON SCHEMA work TO ${grader}`);
  await client.query(
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${candidate} IN SCHEMA work GRANT SELECT ON TABLES TO ${grader}`,
  );
  await client.query(`ALTER ROLE ${candidate} IN DATABASE ${db} SET search_path = work, ${schema}`);
  await client.query(`ALTER ROLE ${candidate} IN DATABASE ${db} SET statement_timeout = '60s'`);
  await limitGrader(client, grader, db);
  await closeSideChannels(client, admin);
}

/**
 * Revokes from PUBLIC, in the database `client` is connected to, the statistics functions and the
 * lock functions: `pg_locks` (through `pg_lock_status`) shows every database's locks, so an answer
 * running on a hidden variant could spell its data into advisory-lock keys, or hold a lock on a
 * hidden table for as long as a hidden value says, for the candidate's own session to read.
 */
const REVOKE_STATISTICS = `DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND (p.proname LIKE 'pg\\_stat\\_get\\_%' OR p.proname IN ('pg_stat_have_stats',
        'pg_lock_status', 'pg_blocking_pids', 'pg_safe_snapshot_blocking_pids',
        'pg_isolation_test_session_is_blocked'))
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END $$`;

/**
 * Shuts what PUBLIC may use to watch the grader (pg_terminate_backend stays: the grade server ends
 * a run past its deadline with it, as its own role; an answer that ends itself is graded as such,
 * see runQuery): the statistics functions behind `pg_stat_*`, `pg_statio_*`, `pg_stat_database`
 * and `pg_stat_activity`, and the lock functions behind `pg_locks` (a view's functions are checked
 * against whoever reads it, so the views close with them). The scan and tuple counters a reference leaves on `retail` told which tables
 * and indexes it reads, and `pg_stat_database` showed the hidden variants being read. Closed in the
 * candidate's database and in `postgres` and `template1`, which any role may connect to and where
 * `pg_stat_database` is the whole server's. Idempotent.
 */
async function closeSideChannels(client: pg.Client, admin: pg.ClientConfig): Promise<void> {
  await client.query(REVOKE_STATISTICS);
  const others = await client.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datname IN ('postgres', 'template1') AND datname <> current_database()`,
  );
  for (const { datname } of others.rows) {
    const other = new pg.Client({ ...admin, database: datname });
    await other.connect();
    try {
      await other.query(REVOKE_STATISTICS);
    } finally {
      await other.end();
    }
  }
}
