import { rmSync } from 'node:fs';
import { type ConsoleRequest, hiddenVariantDatabase, DB_CREDENTIAL_KEYS as KEYS } from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';
import { runSeed } from '../../sandboxes/src/seeder/run.ts';
import { credentialsDir as writeCredentials } from '../harness/grader.ts';
import { GraderStore } from '../harness/grader-store.ts';

/**
 * The console's run endpoint of the grade server (POST /v1/run) against a real PostgreSQL seeded by
 * the seed Job's code (hidden variant included) and a real MongoDB wire-protocol server (FerretDB):
 * statements run as the candidate, so `work` takes writes and the graded data refuses them, under
 * grading's limits.
 */
const TOKEN = 'console-grader-token-0123456789';
const server = inject('postgres');
const DB = `console_${process.pid}`;
// Roles are server-wide: names of this file's own, so no other suite resets their passwords.
const creds = {
  [KEYS.database]: DB,
  [KEYS.username]: `console_cand_${process.pid}`,
  [KEYS.password]: 'console-candidate-pw',
  [KEYS.adminUsername]: server.user,
  [KEYS.adminPassword]: server.password,
  [KEYS.graderUsername]: `console_grader_${process.pid}`,
  [KEYS.graderPassword]: 'console-grader-pw',
};
const mongoCreds = {
  ...creds,
  [KEYS.database]: 'sandbox',
  [KEYS.username]: 'candidate',
  [KEYS.password]: 'candidate-pw',
  [KEYS.adminUsername]: 'root',
  [KEYS.adminPassword]: 'root-pw-0123456789',
  [KEYS.graderUsername]: 'grader',
  [KEYS.graderPassword]: 'grader-pw',
};
const ferret = new FerretServer({
  auth: { username: mongoCreds[KEYS.adminUsername], password: mongoCreds[KEYS.adminPassword] },
});
const store = new GraderStore();
const dirs: string[] = [];
let app: FastifyInstance;
let admin: pg.ClientConfig;

const credentialsDir = (values: Record<string, string>) => {
  const dir = writeCredentials(values);
  dirs.push(dir);
  return dir;
};

const run = (body: Partial<ConsoleRequest> & Record<string, unknown>, token = TOKEN) =>
  app.inject({
    method: 'POST',
    url: '/v1/run',
    headers: { authorization: `Bearer ${token}` },
    payload: body,
  });
const sql = (query: string) => run({ sandbox: 'warehouse', query });

async function asAdmin<T>(f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(admin);
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  const c = new pg.Client({ ...server, database: 'postgres' });
  await c.connect();
  await c.query(`CREATE DATABASE ${DB}`);
  await c.end();
  admin = { ...server, database: DB };
  await Promise.all([ferret.start(), store.start()]);
  const pgDir = credentialsDir(creds);
  const mongoDir = credentialsDir(mongoCreds);
  await runSeed(
    [
      {
        name: 'warehouse',
        kind: 'postgres',
        host: server.host,
        port: server.port,
        dataset: 'retail@1',
        credentials: pgDir,
        hiddenVariants: 1,
      },
      {
        name: 'events',
        kind: 'mongo',
        host: '127.0.0.1',
        port: ferret.port,
        dataset: 'retail@1',
        credentials: mongoDir,
        store: store.location,
      },
    ],
    { size: 'small', waitTimeoutMs: 30_000, log: () => {}, allowRolelessUsers: true },
  );
  // The keys the operator mounts in the grader pod: the grader's and the candidate's, not the admin's.
  const mounted = (all: Record<string, string>) =>
    credentialsDir({
      [KEYS.database]: all[KEYS.database]!,
      [KEYS.graderUsername]: all[KEYS.graderUsername]!,
      [KEYS.graderPassword]: all[KEYS.graderPassword]!,
      [KEYS.username]: all[KEYS.username]!,
      [KEYS.password]: all[KEYS.password]!,
    });
  app = await buildGradeServer({
    plan: [
      {
        name: 'warehouse',
        kind: 'postgres',
        host: server.host,
        port: server.port,
        credentials: mounted(creds),
        hiddenVariants: 1,
      },
      {
        name: 'events',
        kind: 'mongo',
        host: '127.0.0.1',
        port: ferret.port,
        credentials: mounted(mongoCreds),
        store: store.location,
      },
      // A grader whose Deployment predates the candidate's keys (an older operator).
      {
        name: 'legacy',
        kind: 'postgres',
        host: server.host,
        port: server.port,
        credentials: credentialsDir({
          [KEYS.database]: DB,
          [KEYS.graderUsername]: creds[KEYS.graderUsername],
          [KEYS.graderPassword]: creds[KEYS.graderPassword],
        }),
      },
    ],
    token: () => TOKEN,
    // A row cap below the console's 1000, so the small dataset's collections overflow it.
    limits: { timeoutMs: 2000, maxBytes: 2 << 20, rowCap: 100 },
  });
}, 240_000);

afterAll(async () => {
  await app?.close();
  await Promise.all([ferret.stop(), store.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('console runs on the grade server', () => {
  it('runs a SELECT as the candidate and returns columns, rows, count and duration', async () => {
    const res = await sql('SELECT customer_id, country FROM customers ORDER BY customer_id LIMIT 3');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ columns: ['customer_id', 'country'], rowCount: 3, truncated: false });
    expect(body.command).toBe('SELECT');
    expect(body.rows).toHaveLength(3);
    // Whole milliseconds, and within the run's time limit (a duration in seconds or a missing one fails).
    expect(Number.isInteger(body.durationMs)).toBe(true);
    expect(body.durationMs).toBeLessThan(2000);
    // As the candidate's own user, not the grader's.
    expect((await sql('SELECT current_user AS u')).json().rows).toEqual([[creds[KEYS.username]]]);
  });

  it('writes to work are committed; writes to the graded data are refused', async () => {
    const create = await sql('CREATE TABLE work.console_t (id int PRIMARY KEY, note text)');
    expect(create.statusCode, create.body).toBe(200);
    expect(create.json()).toMatchObject({ command: 'CREATE', rowCount: 0, columns: [] });
    const insert = await sql("INSERT INTO console_t VALUES (1, 'a'), (2, 'b')");
    expect(insert.json()).toMatchObject({ command: 'INSERT', rowCount: 2 });
    const returning = await sql("INSERT INTO work.console_t VALUES (3, 'c') RETURNING id, note");
    expect(returning.json()).toMatchObject({ columns: ['id', 'note'], rows: [[3, 'c']], rowCount: 1 });
    const read = await sql('SELECT count(*)::int AS n FROM work.console_t');
    expect(read.json().rows).toEqual([[3]]);
    expect(
      await asAdmin(async (c) => (await c.query('SELECT count(*)::int AS n FROM work.console_t')).rows[0].n),
    ).toBe(3);

    const before = await asAdmin(
      async (c) => (await c.query('SELECT count(*)::int AS n FROM retail.customers')).rows[0].n,
    );
    for (const statement of [
      'DELETE FROM retail.customers',
      "UPDATE retail.customers SET country = 'XX'",
      'DROP TABLE retail.customers',
      'CREATE TABLE retail.x (id int)',
      'WITH d AS (DELETE FROM retail.customers RETURNING 1) SELECT count(*) FROM d',
    ]) {
      const res = await sql(statement);
      expect(res.statusCode, `${statement}: ${res.body}`).toBe(422);
      expect(res.json().reason, statement).toMatch(/Forbidden|SqlError/);
      expect(res.json().detail, statement).toMatch(/permission denied|must be owner/i);
    }
    expect(
      await asAdmin(
        async (c) => (await c.query('SELECT count(*)::int AS n FROM retail.customers')).rows[0].n,
      ),
    ).toBe(before);
  });

  it('cannot reach the hidden variants nor the grader store', async () => {
    const cross = await sql(`SELECT * FROM ${hiddenVariantDatabase(DB, 1)}.retail.customers`);
    expect(cross.statusCode).toBe(422);
    expect(cross.json().detail).toMatch(/cross-database references are not implemented/);
    // The candidate's user may not even connect to it (the seeder granted CONNECT to the grader only).
    const direct = new pg.Client({
      ...server,
      user: creds[KEYS.username],
      password: creds[KEYS.password],
      database: hiddenVariantDatabase(DB, 1),
    });
    await expect(direct.connect()).rejects.toThrow(/permission denied|not permitted/i);
    await direct.end().catch(() => {});
    // No sandbox of that name, and no field to name another database: the request is refused.
    expect((await run({ sandbox: 'grader-store', pipeline: '[]', collection: 'results' })).statusCode).toBe(
      404,
    );
    const named = await run({
      sandbox: 'events',
      pipeline: '[]',
      collection: 'results',
      database: 'epreuve_references',
    });
    expect(named.statusCode).toBe(400);
    expect(named.json().detail).toMatch(/database/);
  });

  it('cuts a large result at the row cap with a truncated flag, and refuses one past the byte cap', async () => {
    const many = await sql('SELECT g FROM generate_series(1, 5000) g');
    expect(many.statusCode).toBe(200);
    expect(many.json()).toMatchObject({ truncated: true, rowCount: 100 });
    expect(many.json().rows).toHaveLength(100);
    // 8 MB against the 2 MiB cap: past it four times over, and quick to make (100 MB took the
    // whole 2 s timeout on a machine at a load of 15, and came back Timeout).
    const huge = await sql("SELECT repeat('x', 8000000)");
    expect(huge.statusCode).toBe(422);
    expect(huge.json()).toMatchObject({ reason: 'TooLarge' });
    // The next run is served.
    expect((await sql('SELECT 1 AS one')).json().rows).toEqual([[1]]);
  });

  it('stops a sleep at the timeout and keeps nothing it changed', async () => {
    const started = Date.now();
    const sleep = await sql('SELECT pg_sleep(30)');
    expect(sleep.statusCode).toBe(422);
    expect(sleep.json()).toMatchObject({ reason: 'Timeout' });
    expect(Date.now() - started).toBeLessThan(10_000);
    const write = await sql(
      'WITH i AS (INSERT INTO work.console_t VALUES (99, $$late$$) RETURNING 1) SELECT pg_sleep(30) FROM i',
    );
    expect(write.json()).toMatchObject({ reason: 'Timeout' });
    expect((await sql('SELECT count(*)::int FROM work.console_t WHERE id = 99')).json().rows).toEqual([[0]]);
  });

  it('a statement that turns its own timeout off is still stopped at the limit, its backend too, and keeps nothing', async () => {
    for (const statement of [
      'CREATE TABLE work.untimed_t (id int)',
      `CREATE FUNCTION work.untimed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('statement_timeout', '0', true); RETURN NEW; END $$`,
      'CREATE FUNCTION work.sleepy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(8); RETURN NEW; END $$',
      'CREATE TRIGGER untimed BEFORE INSERT ON work.untimed_t FOR EACH ROW EXECUTE FUNCTION work.untimed()',
      // Deferred: it runs at COMMIT, a statement of its own whose timer the trigger above turned off.
      'CREATE CONSTRAINT TRIGGER sleepy AFTER INSERT ON work.untimed_t DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION work.sleepy()',
    ])
      expect((await sql(statement)).statusCode, statement).toBe(200);
    const started = Date.now();
    const res = await sql('INSERT INTO work.untimed_t VALUES (1)');
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json()).toMatchObject({ reason: 'Timeout' });
    expect(Date.now() - started).toBeLessThan(5000);
    await asAdmin(async (c) => {
      const sleeping = `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND wait_event = 'PgSleep'`;
      const args = [DB, creds[KEYS.username]];
      let left = 1;
      for (let i = 0; i < 20 && left > 0; i++) {
        left = (await c.query(sleeping, args)).rowCount ?? 0;
        if (left > 0) await new Promise((r) => setTimeout(r, 100));
      }
      await c.query(`SELECT pg_terminate_backend(pid) FROM (${sleeping}) AS s`, args);
      // Without the stop, the backend sleeps on, then commits the row.
      expect(left).toBe(0);
      expect((await c.query('SELECT count(*)::int AS n FROM work.untimed_t')).rows[0].n).toBe(0);
    });
  }, 30_000);

  it('says where a syntax error is, in the text as sent (leading blank lines included)', async () => {
    const res = await sql('\n  SELECT customer_id FRM customers');
    expect(res.statusCode).toBe(422);
    const body = res.json();
    expect(body.reason).toBe('SqlError');
    expect(body.detail).toMatch(/syntax error at or near "customers"/);
    expect(body.position).toBe('\n  SELECT customer_id FRM customers'.indexOf('customers', 25) + 1);
    const missing = await sql('SELECT nope FROM customers');
    expect(missing.json()).toMatchObject({ reason: 'SqlError', position: 8 });
    const two = await sql('SELECT 1; SELECT 2');
    expect(two.json()).toMatchObject({ reason: 'NotAQuery' });
    expect((await sql('  ')).json()).toMatchObject({ reason: 'Empty' });
  });

  it('runs a pipeline as the candidate on MongoDB, cut at the cap, and refuses writing stages', async () => {
    const res = await run({
      sandbox: 'events',
      collection: 'app_sessions',
      pipeline: '[{"$group": {"_id": "$device", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ command: 'aggregate', columns: ['_id', 'n'], truncated: false });
    expect(res.json().rowCount).toBeGreaterThan(0);
    const all = await run({ sandbox: 'events', collection: 'app_sessions', pipeline: '[]' });
    expect(all.json()).toMatchObject({ truncated: true, rowCount: 100 });
    expect(all.json().rows).toHaveLength(100);
    const out = await run({ sandbox: 'events', collection: 'app_sessions', pipeline: '[{"$out": "x"}]' });
    expect(out.statusCode).toBe(422);
    expect(out.json()).toMatchObject({ reason: 'Forbidden' });
    const bad = await run({ sandbox: 'events', collection: 'app_sessions', pipeline: '[{"$match": ' });
    expect(bad.json()).toMatchObject({ reason: 'SqlError' });
  });

  it('refuses a wrong token, a bad body naming the field, the wrong kind, and a grader without the keys', async () => {
    expect((await run({ sandbox: 'warehouse', query: 'SELECT 1' }, 'x'.repeat(31))).statusCode).toBe(401);
    const neither = await run({ sandbox: 'warehouse' });
    expect(neither.statusCode).toBe(400);
    expect(neither.json().detail).toMatch(/body\.query/);
    const noCollection = await run({ sandbox: 'events', pipeline: '[]' });
    expect(noCollection.json().detail).toMatch(/body\.collection/);
    expect((await run({ sandbox: 'events', query: 'SELECT 1' })).statusCode).toBe(404);
    const legacy = await run({ sandbox: 'legacy', query: 'SELECT 1' });
    expect(legacy.statusCode).toBe(503);
    expect(legacy.json().detail).toMatch(/not set up/);
  });

  /**
   * Grading's hostile answers (test/integration/sandbox-sql.test.ts) and more that only a
   * read-write transaction could try: each is contained — refused, cut or harmless — the graded
   * data is unchanged, and no message shows the console's internals.
   */
  const fingerprint = () =>
    asAdmin(
      async (c) =>
        (
          await c.query(
            `SELECT md5(concat_ws(':', (SELECT count(*) FROM retail.customers), (SELECT count(*) FROM retail.transactions),
               (SELECT sum(amount) FROM retail.transactions), (SELECT string_agg(email, '' ORDER BY customer_id) FROM retail.customers),
               (SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'retail'))) AS f`,
          )
        ).rows[0].f as string,
    );
  const hostile: Array<[string, string, RegExp]> = [
    ['DROP TABLE', 'DROP TABLE retail.customers', /must be owner|permission denied/i],
    ['a second statement', 'SELECT 1; DELETE FROM retail.customers', /one statement at a time/],
    [
      'a writing CTE',
      'WITH d AS (DELETE FROM retail.customers RETURNING *) SELECT * FROM d',
      /permission denied/,
    ],
    ['pg_sleep(60)', 'SELECT pg_sleep(60)', /stopped after 2 s/],
    [
      'a cross join counted',
      'SELECT count(*) FROM transactions a, transactions b, transactions c',
      /stopped after 2 s/,
    ],
    ['SET ROLE', 'SET ROLE postgres', /permission denied/],
    [
      'COPY … TO PROGRAM',
      "COPY retail.customers TO PROGRAM 'touch /tmp/pwned-console'",
      /permission denied|must be superuser/i,
    ],
    ['reading server files', "SELECT pg_read_file('/etc/passwd')", /permission denied/],
    ['reading password hashes', 'SELECT rolpassword FROM pg_authid', /permission denied/],
    ['an empty statement', '  ;  -- nothing\n', /Nothing to run/],
    ['a syntax error', 'SELEC country FROM customers', /syntax error at or near "SELEC"/],
    ['TRUNCATE', 'TRUNCATE retail.transactions', /permission denied/],
    ['ALTER TABLE', 'ALTER TABLE retail.customers ADD COLUMN x int', /must be owner/],
    ['ALTER ROLE', 'ALTER ROLE CURRENT_USER SUPERUSER', /permission denied|must be superuser/i],
    ['an extension', 'CREATE EXTENSION dblink', /permission denied|not available|could not open/i],
    ['a lock on graded data', 'LOCK TABLE retail.customers IN ACCESS EXCLUSIVE MODE', /permission denied/],
    [
      'switching the timeout off inside the statement',
      "SELECT set_config('statement_timeout', '0', true), pg_sleep(30)",
      /stopped after 2 s/,
    ],
  ];
  it.each(hostile)(
    'contains %s',
    async (_label, statement, explains) => {
      const before = await fingerprint();
      const res = await sql(statement);
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json().detail).toMatch(explains);
      expect(res.json().detail).not.toMatch(/DECLARE|epreuve_console|SAVEPOINT/);
      expect(await fingerprint()).toBe(before);
    },
    20_000,
  );

  it('refuses a statement over the length limit before the database sees it, naming the field', async () => {
    const res = await sql(`SELECT '${'x'.repeat(30_000)}'`);
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatch(/body\.query/);
  });

  it('says a GRANT granted nothing (PostgreSQL warns, it does not fail), and the data stays read-only', async () => {
    const before = await fingerprint();
    const grant = await sql('GRANT INSERT ON retail.customers TO PUBLIC');
    expect(grant.statusCode, grant.body).toBe(200);
    expect(grant.json().notices).toEqual([expect.stringMatching(/^WARNING: no privileges were granted/)]);
    const insert = await sql('INSERT INTO retail.customers (customer_id) VALUES (-1)');
    expect(insert.json()).toMatchObject({ reason: 'Forbidden' });
    expect(await fingerprint()).toBe(before);
  });

  it('cuts a cross join of everything at the row cap instead of computing it', async () => {
    const res = await sql('SELECT * FROM transactions a, transactions b, transactions c');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ truncated: true, rowCount: 100 });
    const { existsSync } = await import('node:fs');
    expect(existsSync('/tmp/pwned-console')).toBe(false);
  });
});
