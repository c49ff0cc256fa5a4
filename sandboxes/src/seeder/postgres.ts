import { createHash } from 'node:crypto';
import { collectionSourceDatabase, DATA_API_VARIANT, hiddenVariantDatabase } from '@epreuve/crds';
import pg from 'pg';
import { type Dataset, datasetKey } from '../datasets/catalog.ts';
import { tablesSha256 } from '../datasets/prebuilt.ts';
import type { Size } from '../datasets/retail/v1.ts';
import { OWN_LOCKS_SCHEMA, OWN_RELATION_LOCKS } from '../grader/guard.ts';
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
  /**
   * Runs the role setup and the commit: `oneAtATime()` when seeds of one server run side by side
   * (they set the same grader role's server-wide settings, which two open transactions cannot).
   */
  inTurn?: <T>(finish: () => Promise<T>) => Promise<T>;
  /**
   * The SHA-256 of the tables this seed loads at a size and variant (prebuilt.ts tablesSha256),
   * when known without generating them (a prebuilt file's header): checked against a preloaded
   * database's marker. Without it, the tables are generated and hashed.
   */
  expectedTables?: (dataset: Dataset, size: Size, variant: number) => string | undefined;
}

/** Runs the functions it is given one at a time, in the order given (a failure does not stop the next). */
export function oneAtATime(): <T>(fn: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (fn) => {
    const run = last.then(fn, fn);
    last = run.catch(() => {});
    return run;
  };
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
  // Seeds of one server run side by side (seedPostgresServer): a grader-only database says which it is.
  const where = o.variant ? `postgres (${admin.database})` : 'postgres';
  const log = (line: string) => o.log?.(line.replace(/^postgres:/, `${where}:`));
  const client = new pg.Client(admin);
  // A database that restarts mid-seed fails the statement in flight (and the seed, retried by its Job).
  client.on('error', () => {});
  await client.connect();
  const schema = o.dataset.postgres.schema;
  let rows: Record<string, number> = {};
  let loaded = false;
  try {
    await client.query('BEGIN');
    // Two seeders at once (a Job retry racing a slow first pod) must not both load.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('epreuve-seed'))");
    const seeded = await readMarker(client, schema);
    const variant = o.variant ?? 0;
    const preloadRefused = seeded?.preloaded
      ? preloadMismatch(seeded, {
          dataset: datasetKey(o.dataset),
          size: o.size,
          variant,
          layout: layoutFingerprint(o.dataset),
          tables: () => o.expectedTables?.(o.dataset, o.size, variant) ?? tablesSha256(tablesOf(o)),
        })
      : undefined;
    if (seeded && !preloadRefused) {
      if (seeded.dataset !== datasetKey(o.dataset)) {
        throw new Error(
          `this database already holds dataset ${seeded.dataset}; refusing to load ${datasetKey(o.dataset)} over it`,
        );
      }
      log(
        seeded.preloaded
          ? `postgres: ${seeded.dataset} (${seeded.size}) preloaded at image build and verified; nothing to load`
          : `postgres: ${seeded.dataset} (${seeded.size}) already loaded; nothing to do`,
      );
    } else {
      if (preloadRefused) {
        // Only a preloaded schema: nobody has had a role to write in it yet (the seed gives LOGIN).
        log(
          `postgres: not using the preloaded ${seeded!.dataset} (${seeded!.size}): ${preloadRefused}; loading it`,
        );
        await client.query(`DROP SCHEMA ${pg.escapeIdentifier(schema)} CASCADE`);
      }
      rows = await loadDataset(client, o, log);
      loaded = true;
    }
    const finish = async () => {
      if (o.variant) await setUpHiddenRoles(client, admin.database ?? 'postgres', schema, o);
      else await setUpRoles(client, admin, schema, o);
      await client.query('COMMIT');
    };
    await (o.inTurn ? o.inTurn(finish) : finish());
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

/** The tables this seed loads (the tables only: the MongoDB collections are generated last). */
const tablesOf = (o: Pick<PostgresSeedOptions, 'dataset' | 'size' | 'variant'>) =>
  o.dataset.generate(o.size, o.variant ?? 0, 'tables');

/**
 * Bump when what loadDataset leaves in a database changes other than through the dataset's DDL,
 * table list or data (copy.ts, the marker, ANALYZE): data directories preloaded before (the
 * PostgreSQL image's, hack/images/postgres/preload.ts) are then loaded again, not trusted.
 */
export const LOAD_FORMAT = 1;

/** What the loaded tables' definitions depend on: the loader's format, the DDL and the columns loaded. */
export function layoutFingerprint(dataset: Pick<Dataset, 'postgres'>): string {
  const { ddl, tables, schema } = dataset.postgres;
  return createHash('sha256')
    .update(JSON.stringify([LOAD_FORMAT, schema, ddl, tables]))
    .digest('hex')
    .slice(0, 32);
}

/** The marker a load leaves in the dataset's schema (`_epreuve_seed`, revoked from every role). */
export interface SeedMarker {
  dataset: string;
  size: string;
  variant: number;
  /** The SHA-256 of the loaded tables' JSON (prebuilt.ts tablesSha256). */
  tables_sha256: string | null;
  layout: string | null;
  /** Loaded at image build (the PostgreSQL image's preloaded data directory), not by this seed. */
  preloaded: boolean;
}

async function readMarker(client: pg.Client, schema: string): Promise<SeedMarker | undefined> {
  const exists = await client.query(`SELECT to_regclass('${schema}._epreuve_seed') AS t`);
  if (!exists.rows[0].t) return undefined;
  return (await client.query<SeedMarker>(`SELECT * FROM ${schema}._epreuve_seed`)).rows[0];
}

/**
 * Why a database preloaded at image build is not what this seed would load, or undefined when it
 * is: the same dataset, size and variant, tables made by the same DDL and loader, and rows whose
 * SHA-256 is the one this seeder's own tables have (`tables` is called last: it may read a file).
 */
export function preloadMismatch(
  m: SeedMarker,
  want: { dataset: string; size: string; variant: number; layout: string; tables: () => string },
): string | undefined {
  if (m.dataset !== want.dataset) return `it holds ${m.dataset}, this seed loads ${want.dataset}`;
  if (m.size !== want.size) return `it holds the ${m.size} size, this seed loads ${want.size}`;
  if (m.variant !== want.variant) return `it holds variant ${m.variant}, this seed loads ${want.variant}`;
  if (m.layout !== want.layout)
    return `its tables were made by another DDL or loader (layout ${m.layout}, this seeder's ${want.layout})`;
  const sha = want.tables();
  if (m.tables_sha256 !== sha)
    return `its rows differ from this seeder's (sha256 ${m.tables_sha256?.slice(0, 12)}…, this seeder's ${sha.slice(0, 12)}…)`;
  return undefined;
}

/**
 * Loads the dataset's tables (with COPY, see copy.ts), their indexes and foreign keys, the marker
 * and their statistics, on a client in an open transaction. The seed's own load, and the
 * PostgreSQL image's preload (`preloaded`), which runs it at image build.
 */
export async function loadDataset(
  client: pg.Client,
  o: Pick<PostgresSeedOptions, 'dataset' | 'size' | 'variant'> & { preloaded?: boolean },
  log: (line: string) => void = () => {},
): Promise<Record<string, number>> {
  const schema = o.dataset.postgres.schema;
  const rows: Record<string, number> = {};
  let started = Date.now();
  const data = tablesOf(o);
  log(`postgres: ${datasetKey(o.dataset)} (${o.size}) prepared in ${Date.now() - started} ms`);
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
    `CREATE TABLE ${schema}._epreuve_seed (dataset text NOT NULL, size text NOT NULL, variant integer NOT NULL,
       tables_sha256 text, layout text, preloaded boolean NOT NULL, seeded_at timestamptz NOT NULL DEFAULT now())`,
  );
  await client.query(
    `INSERT INTO ${schema}._epreuve_seed (dataset, size, variant, tables_sha256, layout, preloaded) VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      datasetKey(o.dataset),
      o.size,
      o.variant ?? 0,
      tablesSha256(data),
      layoutFingerprint(o.dataset),
      o.preloaded ?? false,
    ],
  );
  started = Date.now();
  // The loaded tables only: a bare ANALYZE also walks every catalog table, seconds on a small CPU.
  await client.query(`ANALYZE ${o.dataset.postgres.tables.map((t) => `${schema}.${t.table}`).join(', ')}`);
  log(`postgres: analyzed in ${Date.now() - started} ms`);
  return rows;
}

/**
 * Seeds one PostgreSQL server: the candidate's data, the hidden variants and what the data API
 * serves, each in its own database and transaction, side by side (one after the other, the
 * server's latency and the seeder's own work added up: 8 s of a 30 s cold start). What the loads
 * share is done before them or in turn: the roles exist first (without LOGIN until the candidate's
 * seed sets them up), every database is created first (CREATE DATABASE copies template1, which
 * fails while the candidate's seed is connected to it), and role setup and commit go one at a time.
 */
export async function seedPostgresServer(
  admin: pg.ClientConfig,
  o: Omit<PostgresSeedOptions, 'variant' | 'inTurn'> & {
    hiddenVariants?: number;
    collectionSource?: { dataset: Dataset; size: Size };
  },
): Promise<void> {
  const { hiddenVariants = 0, collectionSource, ...common } = o;
  const base = admin.database ?? 'postgres';
  await ensureRoles(admin, [o.candidate.username, o.grader.username]);
  // Before any role can log in: the image's preload ships the data API's copy with every dataset.
  if (!collectionSource)
    await dropUnusedPreload(admin, collectionSourceDatabase(base), o.dataset.postgres.schema, o.log);
  const hidden = Array.from({ length: hiddenVariants }, (_, k) => k + 1);
  for (const i of hidden) await ensureDatabase(admin, hiddenVariantDatabase(base, i));
  if (collectionSource) await ensureDatabase(admin, collectionSourceDatabase(base));
  const inTurn = oneAtATime();
  const results = await Promise.allSettled([
    seedPostgres(admin, { ...common, inTurn }),
    ...hidden.map((i) =>
      seedPostgres(
        { ...admin, database: hiddenVariantDatabase(base, i) },
        { ...common, size: 'small', variant: i, inTurn },
      ),
    ),
    ...(collectionSource
      ? [
          seedPostgres(
            { ...admin, database: collectionSourceDatabase(base) },
            { ...common, ...collectionSource, variant: DATA_API_VARIANT, inTurn },
          ),
        ]
      : []),
  ]);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Drops `database` when it is one the image preloaded (its marker says so) and this server's seed
 * has no use for: the PostgreSQL image's data directories carry the data API's copy (the
 * collection source) with the candidate's data, and a template without check tasks must not keep
 * a database a fresh seed would not have made. Anything else is left alone.
 */
async function dropUnusedPreload(
  admin: pg.ClientConfig,
  database: string,
  schema: string,
  log?: (line: string) => void,
): Promise<void> {
  const client = new pg.Client(admin);
  client.on('error', () => {}); // as in seedPostgres: the statement in flight fails instead
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!exists.rowCount) return;
    const other = new pg.Client({ ...admin, database });
    other.on('error', () => {});
    await other.connect();
    let marker: SeedMarker | undefined;
    try {
      marker = await readMarker(other, schema);
    } finally {
      await other.end();
    }
    if (!marker?.preloaded) return;
    await client.query(`DROP DATABASE ${pg.escapeIdentifier(database)}`);
    log?.(`postgres: dropped ${database}, preloaded by the image, unused by this assessment`);
  } finally {
    await client.end();
  }
}

/** Creates the roles that do not exist yet, without LOGIN: setUpRoles gives them that and a password. */
async function ensureRoles(admin: pg.ClientConfig, names: string[]): Promise<void> {
  const client = new pg.Client(admin);
  client.on('error', () => {}); // as in seedPostgres: the statement in flight fails instead
  await client.connect();
  try {
    for (const name of names) await createRoleIfMissing(client, name);
  } finally {
    await client.end();
  }
}

/** CREATE ROLE (NOLOGIN, PostgreSQL's default) unless it exists: a re-run or another seed made it. */
const createRoleIfMissing = (client: pg.Client, name: string) =>
  client.query(
    `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${pg.escapeLiteral(name)}) THEN CREATE ROLE ${pg.escapeIdentifier(name)}; END IF; END $$`,
  );

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
  // Made from template1 before the candidate's seed closed it there (seeds run side by side):
  // answers run here too, so the same functions close here.
  await client.query(REVOKE_STATISTICS);
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
  await ownLocksOnly(client, grader);
}

/**
 * The check guard reads the relation locks of its own session (guard.ts), and answers run as the
 * grader too, so the grader may not read `pg_locks`: a red-team finding, an answer on a hidden
 * variant spelled hidden rows into advisory-lock keys while another answer, on the candidate's own
 * data, read them from `pg_locks` and raised them in an error the candidate was shown. The guard
 * gets its own session's locks, in this database, through a function that runs as the admin; the
 * grader may call that one and not `pg_lock_status` (revoked from PUBLIC: closeSideChannels).
 */
async function ownLocksOnly(client: pg.Client, grader: string): Promise<void> {
  await client.query(`REVOKE EXECUTE ON FUNCTION pg_catalog.pg_lock_status() FROM PUBLIC, ${grader}`);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${OWN_LOCKS_SCHEMA}`);
  await client.query(`REVOKE ALL ON SCHEMA ${OWN_LOCKS_SCHEMA} FROM PUBLIC`);
  await client.query(`GRANT USAGE ON SCHEMA ${OWN_LOCKS_SCHEMA} TO ${grader}`);
  await client.query(
    `CREATE OR REPLACE FUNCTION ${OWN_RELATION_LOCKS}() RETURNS SETOF oid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
       SELECT l.relation FROM pg_catalog.pg_locks l
       WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid()
         AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
     $$`,
  );
  await client.query(`REVOKE ALL ON FUNCTION ${OWN_RELATION_LOCKS}() FROM PUBLIC`);
  await client.query(`GRANT EXECUTE ON FUNCTION ${OWN_RELATION_LOCKS}() TO ${grader}`);
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
    await createRoleIfMissing(client, username);
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
 * hidden table for as long as a hidden value says, for the candidate's own session to read. And
 * `pg_tablespace_size`: the default tablespace's size counts every database's temporary files, so
 * an answer on a hidden variant could spill a sort as large as a hidden value says while the
 * candidate's session watched the size (a red-team finding, about 15 bits per attempt). And the
 * transaction-id and WAL counters (red team 4): an answer on a hidden variant took an xid
 * (`pg_current_xact_id`, allowed in a read-only transaction) when a hidden value said so, and the
 * candidate's session read the server-wide counter (`pg_current_snapshot`, `age(xid)`). The
 * candidate can still see the counter through the `xmin` of rows they insert: what closes the
 * channel is that no answer can take an xid. `age(timestamp)` is another function and stays.
 * And `pg_logical_emit_message` (red team 5), open to PUBLIC: it writes WAL (an answer on a hidden
 * variant wrote as many bytes as a hidden count, and the candidate's own call returned the WAL
 * position, exact to the byte), and with `transactional` it takes an xid even in a read-only
 * transaction. Every overload, by name (PostgreSQL 17 added one with `flush`).
 */
const REVOKE_STATISTICS = `DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND (p.proname LIKE 'pg\\_stat\\_get\\_%' OR p.proname IN ('pg_stat_have_stats',
        'pg_lock_status', 'pg_blocking_pids', 'pg_safe_snapshot_blocking_pids',
        'pg_isolation_test_session_is_blocked', 'pg_tablespace_size',
        'pg_current_xact_id', 'txid_current', 'pg_current_xact_id_if_assigned',
        'txid_current_if_assigned', 'pg_current_snapshot', 'txid_current_snapshot',
        'pg_snapshot_xmin', 'pg_snapshot_xmax', 'pg_snapshot_xip', 'txid_snapshot_xmin',
        'txid_snapshot_xmax', 'txid_snapshot_xip', 'pg_xact_status', 'txid_status', 'mxid_age',
        'pg_current_wal_lsn', 'pg_current_wal_insert_lsn', 'pg_current_wal_flush_lsn',
        'pg_logical_emit_message')
        OR p.oid = 'pg_catalog.age(xid)'::regprocedure)
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
