import pg from 'pg';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { SQL_EXERCISES } from '../../sandboxes/src/exercises/sql.ts';
import { gradeSql } from '../../sandboxes/src/grader/index.ts';
import { runQuery } from '../../sandboxes/src/grader/sql.ts';
import { seedPostgres } from '../../sandboxes/src/seeder/postgres.ts';

/** The SQL sandbox against a real PostgreSQL: seeding, every exercise, and hostile answers. */
const server = inject('postgres');
const DB = `sandbox_sql_${process.pid}`;
const candidate = { username: 'candidate', password: 'candidate-pw-1' };
const graderCreds = { username: 'grader', password: 'grader-pw-1' };
let admin: pg.ClientConfig;
let grader: pg.ClientConfig;
let log: string[] = [];

async function scalar<T>(conn: pg.ClientConfig, sql: string): Promise<T> {
  const c = new pg.Client(conn);
  await c.connect();
  try {
    const row = (await c.query(sql)).rows[0];
    return (row ? Object.values(row)[0] : undefined) as T;
  } finally {
    await c.end();
  }
}

/** A fingerprint of the whole dataset, to prove hostile answers changed nothing. */
const fingerprint = () =>
  scalar<string>(
    admin,
    `SELECT md5(string_agg(t, ',')) FROM (
       SELECT (SELECT count(*) FROM retail.customers)::text || ':' || (SELECT count(*) FROM retail.transactions)::text || ':' ||
              (SELECT sum(amount) FROM retail.transactions)::text || ':' || (SELECT string_agg(email, '' ORDER BY customer_id) FROM retail.customers) AS t
     ) x`,
  );

beforeAll(async () => {
  const c = new pg.Client({ ...server, database: 'postgres' });
  await c.connect();
  await c.query(`CREATE DATABASE ${DB}`);
  await c.end();
  admin = { ...server, database: DB };
  grader = { ...server, database: DB, user: graderCreds.username, password: graderCreds.password };
  const res = await seedPostgres(admin, {
    dataset: resolveDataset('retail@1'),
    size: 'small',
    candidate,
    grader: graderCreds,
    log: (l) => log.push(l),
  });
  expect(res.loaded).toBe(true);
}, 120_000);

describe('seeder (PostgreSQL)', () => {
  it('loaded every table and printed progress', async () => {
    expect(await scalar<string>(admin, 'SELECT count(*) FROM retail.transactions')).toBe('1377');
    expect(log.some((l) => /loaded retail.transactions: 1377 rows/.test(l))).toBe(true);
  });

  it('is a no-op when run again', async () => {
    const before = await fingerprint();
    log = [];
    const again = await seedPostgres(admin, {
      dataset: resolveDataset('retail'),
      size: 'small',
      candidate,
      grader: graderCreds,
      log: (l) => log.push(l),
    });
    expect(again.loaded).toBe(false);
    expect(log[0]).toMatch(/retail@1 \(small\) already loaded; nothing to do/);
    expect(await fingerprint()).toBe(before);
  });

  it('refuses to load another dataset over this one', async () => {
    const other = { ...resolveDataset('retail@1'), version: 2 };
    await expect(
      seedPostgres(admin, { dataset: other, size: 'small', candidate, grader: graderCreds }),
    ).rejects.toThrow(/already holds dataset retail@1; refusing to load retail@2/);
  });

  it('gives the candidate read-only data and a work schema of their own', async () => {
    const asCandidate = { ...admin, user: candidate.username, password: candidate.password };
    const c = new pg.Client(asCandidate);
    await c.connect();
    try {
      expect((await c.query('SELECT count(*) FROM customers')).rows[0].count).toBe('61'); // search_path: work, retail
      await expect(c.query('DELETE FROM retail.customers')).rejects.toThrow(/permission denied/);
      await c.query('CREATE TABLE work.collected (id int primary key, payload jsonb)');
      await c.query(`INSERT INTO work.collected VALUES (1, '{"a": 1}')`);
    } finally {
      await c.end();
    }
    // The grader can read what the candidate built…
    expect((await runQuery(grader, 'SELECT id FROM work.collected')).rows).toEqual([[1]]);
  });

  // A red-team finding: the counters a reference left on `retail` told the candidate which tables
  // and indexes it reads.
  it.each([
    ['the tables’ scan counters', 'SELECT relname, seq_scan, idx_scan FROM pg_stat_user_tables'],
    ['the I/O counters', 'SELECT * FROM pg_statio_user_tables'],
    ['a statistics function called directly', `SELECT pg_stat_get_numscans('retail.transactions'::regclass)`],
    ['the databases’ counters (hidden variants read)', 'SELECT datname, tup_returned FROM pg_stat_database'],
    ['other sessions', 'SELECT pid, query FROM pg_stat_activity'],
    // A red-team finding: an answer on a hidden variant spelled the hidden rows into advisory-lock
    // keys (pg_advisory_xact_lock(1, amount)), and the candidate's own session read them here.
    ['every database’s locks (advisory-lock keys an answer chose)', 'SELECT classid, objid FROM pg_locks'],
    ['who blocks whom', 'SELECT pg_blocking_pids(pg_backend_pid())'],
    // A red-team finding: the default tablespace's size counts every database's temporary files,
    // and an answer on a hidden variant spilled a sort as large as a hidden value.
    ['the temporary files of every database (by name)', `SELECT pg_tablespace_size('pg_default')`],
    ['the temporary files of every database (by oid)', `SELECT pg_tablespace_size(1663::oid)`],
    // Red team 4: an answer on a hidden variant took a transaction id when a hidden value said so,
    // and the candidate's session read the server-wide counter.
    ['the transaction counter (snapshot)', 'SELECT pg_snapshot_xmax(pg_current_snapshot())'],
    ['the transaction counter (old names)', 'SELECT txid_current_snapshot()'],
    ['the transaction counter (age of an xid)', `SELECT age('3'::xid)`],
    ['the WAL position', 'SELECT pg_current_wal_lsn()'],
    ['taking a transaction id', 'SELECT pg_current_xact_id()'],
    // Red team 5: it returns the WAL position, and writes WAL (and takes an xid) when an answer calls it.
    ['the WAL position (a logical message)', `SELECT pg_logical_emit_message(false, 'x', 'y')`],
    [
      'taking a transaction id (a transactional logical message)',
      `SELECT pg_logical_emit_message(true, 'x', 'y')`,
    ],
  ])('closes %s to the candidate', async (_, sql) => {
    const c = new pg.Client({ ...admin, user: candidate.username, password: candidate.password });
    await c.connect();
    try {
      await expect(c.query(sql)).rejects.toThrow(/permission denied for function (pg_|txid_|age)/);
    } finally {
      await c.end();
    }
  });

  it.each(['postgres', 'template1'])(
    'closes the whole server’s counters in the %s database too (any role may connect there)',
    async (database) => {
      const c = new pg.Client({ ...admin, database, user: candidate.username, password: candidate.password });
      await c.connect();
      try {
        await expect(c.query('SELECT datname, tup_returned FROM pg_stat_database')).rejects.toThrow(
          /permission denied for function pg_stat_get_/,
        );
        await expect(c.query('SELECT classid, objid FROM pg_locks')).rejects.toThrow(
          /permission denied for function pg_lock_status/,
        );
        await expect(c.query(`SELECT pg_tablespace_size('pg_default')`)).rejects.toThrow(
          /permission denied for function pg_tablespace_size/,
        );
      } finally {
        await c.end();
      }
    },
  );

  // A red-team finding (third pass): answers run as the grader, which could read pg_locks for the
  // check guard; an answer on the candidate's data read the advisory-lock keys another answer, on a
  // hidden variant, chose at the same time, and raised them in an error the candidate was shown.
  it('closes every session’s locks to the grader too: answers run as the grader', async () => {
    const c = new pg.Client(grader);
    await c.connect();
    try {
      await expect(c.query('SELECT classid, objid FROM pg_locks')).rejects.toThrow(
        /permission denied for function pg_lock_status/,
      );
      // What the guard may call instead: its own session's relation locks, in this database only.
      await c.query('BEGIN');
      await c.query('LOCK TABLE retail.merchants IN ACCESS SHARE MODE');
      const own = await c.query<{ rel: string }>(
        'SELECT relation::regclass::text AS rel FROM epreuve_guard.own_relation_locks() AS l(relation)',
      );
      expect(own.rows.map((r) => r.rel)).toContain('retail.merchants');
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });

  it('leaves the SQL candidates use whole: age() of a date still works', async () => {
    const c = new pg.Client({ ...admin, user: candidate.username, password: candidate.password });
    await c.connect();
    try {
      const { rows } = await c.query(`SELECT age(date '2026-01-31', date '2025-01-01')::text AS a`);
      expect(rows[0].a).toBe('1 year 30 days');
    } finally {
      await c.end();
    }
  });

  it('leaves grading whole: the grader still reads and answers run', async () => {
    expect((await runQuery(grader, 'SELECT count(*)::int FROM retail.merchants')).rows).toEqual([[24]]);
    // The check guard reads its own session's locks through epreuve_guard.own_relation_locks().
    expect(
      (await runQuery(grader, 'SELECT count(*)::int FROM work.collected', { refuseCandidateCode: true }))
        .rows,
    ).toEqual([[1]]);
  });
});

describe('SQL exercises', () => {
  it('has at least 12, each bilingual with a reference and two wrong answers', () => {
    expect(SQL_EXERCISES.length).toBeGreaterThanOrEqual(12);
    for (const e of SQL_EXERCISES) {
      expect(e.prompt.en && e.prompt.fr && e.title.en && e.title.fr, e.id).toBeTruthy();
      expect(e.wrongAnswers.length, e.id).toBeGreaterThanOrEqual(2);
    }
    const topics = SQL_EXERCISES.flatMap((e) => e.topics).join(' ');
    for (const t of [
      'RANK',
      'DENSE_RANK',
      'ROW_NUMBER',
      'COALESCE',
      'INTERSECT',
      'EXCEPT',
      'anti join',
      'FULL OUTER JOIN',
      'self join',
      'HAVING',
      'CTE',
      'window frames',
      'deduplication',
    ]) {
      expect(topics).toContain(t);
    }
  });

  describe.each(SQL_EXERCISES.map((e) => [e.id, e] as const))('%s', (_id, exercise) => {
    it('its reference solution passes, with a non-trivial result', async () => {
      const g = await gradeSql(grader, exercise, exercise.reference);
      expect(g.explanation).toMatch(/^Correct/);
      expect(g.pass).toBe(true);
      expect(g.expectedRows).toBeGreaterThan(0);
    });

    it.each(exercise.wrongAnswers.map((w, i) => [i + 1, w] as const))(
      'wrong answer %i fails with a useful explanation',
      async (_i, wrong) => {
        const g = await gradeSql(grader, exercise, wrong.answer);
        expect(g.pass).toBe(false);
        expect(g.explanation).toMatch(wrong.explains);
      },
    );
  });
});

describe('hostile answers are contained, data unchanged, error clear', () => {
  const exercise = SQL_EXERCISES[0]!;
  const hostile: Array<[string, string, RegExp]> = [
    ['DROP TABLE', 'DROP TABLE retail.customers', /Only a single SELECT/],
    ['a second statement', 'SELECT 1; DELETE FROM retail.customers', /single statement|more than one/],
    [
      'a writing CTE',
      'WITH d AS (DELETE FROM retail.customers RETURNING *) SELECT * FROM d',
      /only a query that reads data|read/i,
    ],
    ['pg_sleep(60)', 'SELECT pg_sleep(60)', /stopped after 2 s/],
    [
      'a cross join of everything',
      'SELECT * FROM retail.transactions a, retail.transactions b, retail.transactions c',
      /stopped after 2 s|more than 10,000 rows/,
    ],
    ['SET ROLE', 'SET ROLE postgres', /Only a single SELECT/],
    ['COPY … TO PROGRAM', "COPY retail.customers TO PROGRAM 'touch /tmp/pwned'", /Only a single SELECT/],
    ['reading server files', "SELECT pg_read_file('/etc/passwd')", /Permission denied/],
    ['reading password hashes', 'SELECT rolpassword FROM pg_authid', /Permission denied/],
    ['a huge string', `SELECT '${'x'.repeat(30_000)}'`, /30,\d{3} characters; the limit is 20,000/],
    ['an empty answer', '  ;  -- nothing\n', /empty/],
    ['a syntax error', 'SELEC country FROM customers', /Only a single SELECT|Syntax error/],
    ['a typo in a column', 'SELECT countryy FROM customers', /column "countryy" does not exist/],
    // Read as a database that stopped (a 503), this withdrew the attempt: an oracle that cost nothing.
    [
      'ending its own session',
      'SELECT pg_terminate_backend(pg_backend_pid())',
      /session was ended while it ran/,
    ],
  ];

  it.each(hostile)(
    '%s',
    async (_label, answer, explains) => {
      const before = await fingerprint();
      const g = await gradeSql(grader, exercise, answer, { timeoutMs: 2000 });
      expect(g.pass).toBe(false);
      expect(g.explanation).toMatch(explains);
      expect(g.explanation).not.toMatch(/DECLARE|epreuve_answer/); // no internals
      expect(await fingerprint()).toBe(before);
    },
    20_000,
  );

  it('did not run the program', async () => {
    const { existsSync } = await import('node:fs');
    expect(existsSync('/tmp/pwned')).toBe(false);
  });
});
