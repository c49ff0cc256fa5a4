import { rmSync } from 'node:fs';
import {
  type GradeRequest,
  hiddenVariantDatabase,
  DB_CREDENTIAL_KEYS as KEYS,
  MAX_GRADE_TEXT,
} from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { MONGO_EXERCISES } from '../../sandboxes/src/exercises/mongo.ts';
import { SQL_EXERCISES } from '../../sandboxes/src/exercises/sql.ts';
import type { ResultSet } from '../../sandboxes/src/grader/compare.ts';
import { runPipeline } from '../../sandboxes/src/grader/mongo.ts';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';
import { runQuery } from '../../sandboxes/src/grader/sql.ts';
import { seedPostgres } from '../../sandboxes/src/seeder/postgres.ts';
import { runSeed } from '../../sandboxes/src/seeder/run.ts';
import { credentialsDir as writeCredentials } from '../harness/grader.ts';
import { GraderStore } from '../harness/grader-store.ts';

/**
 * Hidden re-grade: the seeder loads hidden variants of the dataset (same schema, another seed) that
 * only the grader can read, and the grader re-checks every answer on each. For every exercise of
 * the catalogue, the reference result differs between the candidate's data and each variant, and a
 * literal of the visible reference result — which passes on the candidate's data alone — fails.
 */
const VARIANTS = 2;
const TOKEN = 'hidden-variants-token-0123456789';
const server = inject('postgres');
const DB = `hidden_${process.pid}`;
const creds = {
  [KEYS.database]: DB,
  [KEYS.username]: 'candidate',
  [KEYS.password]: 'candidate-pw',
  [KEYS.adminUsername]: server.user,
  [KEYS.adminPassword]: server.password,
  [KEYS.graderUsername]: 'grader',
  [KEYS.graderPassword]: 'grader-pw',
};
const mongoCreds = {
  ...creds,
  [KEYS.database]: 'sandbox',
  [KEYS.adminUsername]: 'root',
  [KEYS.adminPassword]: 'root-pw-0123456789',
};
const ferret = new FerretServer({
  auth: { username: mongoCreds[KEYS.adminUsername], password: mongoCreds[KEYS.adminPassword] },
});
// MongoDB's hidden variants live in the grader store, a server the candidate cannot reach.
const store = new GraderStore();
const dirs: string[] = [];
let withVariants: FastifyInstance;
let visibleOnly: FastifyInstance;

function credentialsDir(values: Record<string, string>): string {
  const dir = writeCredentials(values);
  dirs.push(dir);
  return dir;
}

const graderOn = (database: string): pg.ClientConfig => ({
  host: server.host,
  port: server.port,
  user: 'grader',
  password: 'grader-pw',
  database,
});

/** A literal SQL answer that lists a result: `SELECT * FROM (VALUES …) AS t(columns)`. */
function sqlLiteral(result: ResultSet): string {
  const value = (v: unknown) =>
    v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${String(v).replaceAll("'", "''")}'`;
  if (result.rows.length === 0)
    return `SELECT * FROM (VALUES (${result.columns.map(() => 'NULL').join(', ')})) AS t(${result.columns.join(', ')}) WHERE false`;
  const rows = result.rows.map((r) => `(${r.map(value).join(', ')})`).join(', ');
  return `SELECT * FROM (VALUES ${rows}) AS t(${result.columns.map((c) => `"${c}"`).join(', ')})`;
}

/**
 * A literal pipeline that lists a result whatever the collection holds. MongoDB runs it; FerretDB
 * 1.x implements none of $literal, $replaceRoot, $documents or $first, so there it fails on the
 * candidate's data already — the hidden variants are what stop it on MongoDB.
 */
function mongoLiteral(result: ResultSet): string {
  const docs = result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c, r[i]])));
  return JSON.stringify([
    { $limit: 1 },
    { $project: { _id: 0, rows: { $literal: docs } } },
    { $unwind: '$rows' },
    { $replaceRoot: { newRoot: '$rows' } },
  ]);
}

/** An answer to a SQL exercise, graded on the candidate's data and every hidden variant. */
const gradeWithVariants = (exercise: (typeof SQL_EXERCISES)[number], answer: string) =>
  grade(withVariants, {
    sandbox: 'warehouse',
    kind: 'sql',
    reference: exercise.reference,
    options: exercise.grader,
    answer,
  });

const grade = (app: FastifyInstance, body: GradeRequest) =>
  app.inject({
    method: 'POST',
    url: '/v1/grade',
    headers: { authorization: `Bearer ${TOKEN}` },
    payload: body,
  });

beforeAll(async () => {
  const c = new pg.Client({ ...server, database: 'postgres' });
  await c.connect();
  await c.query(`CREATE DATABASE ${DB}`);
  await c.end();
  await Promise.all([ferret.start(), store.start()]);
  const pgDir = credentialsDir(creds);
  const mongoDir = credentialsDir(mongoCreds);
  // The seed Job's code path, with the plan the operator writes.
  await runSeed(
    [
      {
        name: 'warehouse',
        kind: 'postgres',
        host: server.host,
        port: server.port,
        dataset: 'retail@1',
        credentials: pgDir,
        hiddenVariants: VARIANTS,
      },
      {
        name: 'events',
        kind: 'mongo',
        host: '127.0.0.1',
        port: ferret.port,
        dataset: 'retail@1',
        credentials: mongoDir,
        hiddenVariants: VARIANTS,
        store: store.location,
        references: MONGO_EXERCISES.filter((e) => !e.manual).map((e) => ({ task: e.id, exercise: e.id })),
      },
    ],
    // FerretDB has no roles: the local cluster's opt-in.
    { size: 'small', waitTimeoutMs: 30_000, log: () => {}, allowRolelessUsers: true },
  );
  const plan = (hiddenVariants: number) => [
    {
      name: 'warehouse',
      kind: 'postgres' as const,
      host: server.host,
      port: server.port,
      credentials: pgDir,
      hiddenVariants,
    },
    {
      name: 'events',
      kind: 'mongo' as const,
      host: '127.0.0.1',
      port: ferret.port,
      credentials: mongoDir,
      hiddenVariants,
      store: store.location,
    },
  ];
  withVariants = await buildGradeServer({ plan: plan(VARIANTS), token: () => TOKEN });
  visibleOnly = await buildGradeServer({ plan: plan(0), token: () => TOKEN });
}, 240_000);

afterAll(async () => {
  await withVariants?.close();
  await visibleOnly?.close();
  await Promise.all([ferret.stop(), store.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('hidden variants (PostgreSQL)', () => {
  it('are out of the candidate’s reach: the candidate role cannot connect to them', async () => {
    const c = new pg.Client({
      ...graderOn(hiddenVariantDatabase(DB, 1)),
      user: 'candidate',
      password: 'candidate-pw',
    });
    await expect(c.connect()).rejects.toThrow(/permission denied|not permitted/);
    await c.end().catch(() => {});
  });

  it('never shows the candidate an error raised on a hidden variant: its text could spell out hidden rows', async () => {
    const exercise = SQL_EXERCISES.find((e) => e.id === 'rank-customers-by-country')!;
    const visible = await runQuery(graderOn(DB), exercise.reference, { rowCap: 100_000 });
    // The visible result on the candidate's own database; elsewhere, a cast whose error message
    // would quote a hidden customer row.
    const answer = `${sqlLiteral(visible)} WHERE current_database() = '${DB}'
      UNION ALL SELECT * FROM (${sqlLiteral(visible)}) v
      WHERE current_database() <> '${DB}'
        AND (SELECT c::text FROM retail.customers c ORDER BY 1 LIMIT 1)::int > 0`;
    const res = (await gradeWithVariants(exercise, answer)).json();
    expect(res).toMatchObject({ pass: false, error: 'SqlError' });
    expect(res.hint).toBe(
      'Your answer gives the right result on your data, but fails to run on other data of the same shape: it must compute the result from the data, whatever the data.',
    );
    expect(res.hintFr).not.toMatch(/integer|\(/);
    // Staff still see what happened.
    expect(res.explanation).toMatch(/hidden variant 1 \(SqlError\).*invalid input syntax for type integer/);
  });

  // Red team 6: the grader quoted an answer's rows and database errors whole, so an answer could
  // make the reply, on a hidden variant only, larger than the API reads of one (8 MiB). The API took
  // that for the grader being down and withdrew the attempt: a free probe of hidden data per answer.
  it('keeps its reply small whatever an answer returns or raises on a hidden variant', async () => {
    const exercise = SQL_EXERCISES.find((e) => e.id === 'rank-customers-by-country')!;
    const visible = await runQuery(graderOn(DB), exercise.reference, { rowCap: 100_000 });
    const mine = `SELECT * FROM (${sqlLiteral(visible)}) v WHERE current_database() = '${DB}'`;
    const elsewhere = `SELECT * FROM (${sqlLiteral(visible)}) v WHERE current_database() <> '${DB}'`;
    // A 1.6 MB row of control characters (9.6 MB once JSON-escaped), and an error quoting 3 MB.
    const hugeRow = `${mine} UNION ALL ${elsewhere} UNION ALL SELECT repeat(chr(1), 1600000), NULL, NULL, NULL WHERE current_database() <> '${DB}'`;
    // (A CASE on current_database(), which is not folded at plan time as a constant would be.)
    const hugeError = `${mine} UNION ALL ${elsewhere} AND (CASE WHEN current_database() <> '${DB}' THEN repeat(chr(1), 3000000) ELSE '1' END)::int > 0`;
    for (const [answer, error] of [
      [hugeRow, undefined],
      [hugeError, 'SqlError'],
    ] as const) {
      const res = await gradeWithVariants(exercise, answer);
      expect(res.statusCode).toBe(200);
      // Three texts of at most MAX_GRADE_TEXT characters, 6 bytes each once JSON-escaped at worst:
      // far under the 8 MiB the API reads (before: 9.6 MB and 18 MB).
      expect(res.body.length).toBeLessThan(3 * MAX_GRADE_TEXT * 6 + 4096);
      const body = res.json();
      expect([body.pass, body.error]).toEqual([false, error]);
      expect(body.explanation).toMatch(/hidden variant 1/);
    }
  });

  // Red team 4: every assessment's hidden variants were the same, and the code is public, so an
  // attacker seeded them at home, listed each one's result and pasted a literal choosing by
  // database name: it passed. Salted per seed, the variants are this assessment's own.
  it('a list of every variant’s result, rebuilt from the public code, fails', async () => {
    const exercise = SQL_EXERCISES.find((e) => e.id === 'rank-customers-by-country')!;
    const visible = await runQuery(graderOn(DB), exercise.reference, { rowCap: 100_000 });
    const branches = [`SELECT * FROM (${sqlLiteral(visible)}) v WHERE current_database() = '${DB}'`];
    const admin = { host: server.host, port: server.port, user: server.user, password: server.password };
    for (let i = 1; i <= VARIANTS; i++) {
      const home = `${DB}_attacker_${i}`;
      const c = new pg.Client({ ...admin, database: 'postgres' });
      await c.connect();
      await c.query(`CREATE DATABASE ${home}`);
      await c.end();
      await seedPostgres(
        { ...admin, database: home },
        {
          dataset: resolveDataset('retail@1'),
          size: 'small',
          variant: i,
          candidate: { username: 'candidate', password: 'candidate-pw' },
          grader: { username: 'grader', password: 'grader-pw' },
        },
      );
      const rebuilt = await runQuery({ ...admin, database: home }, exercise.reference, { rowCap: 100_000 });
      const actual = await runQuery(graderOn(hiddenVariantDatabase(DB, i)), exercise.reference, {
        rowCap: 100_000,
      });
      expect(rebuilt.rows, `variant ${i}: the code alone rebuilds it`).not.toEqual(actual.rows);
      branches.push(
        `SELECT * FROM (${sqlLiteral(rebuilt)}) h WHERE current_database() = '${hiddenVariantDatabase(DB, i)}'`,
      );
    }
    const res = (await gradeWithVariants(exercise, branches.join(' UNION ALL '))).json();
    expect(res.pass).toBe(false);
  });

  // Red team 4: the hidden databases were made from template1 before the candidate's seed closed
  // its side channels there, and an answer may take a transaction id when a hidden value says so.
  it('closes the statistics and the transaction counter to answers on a hidden variant', async () => {
    const c = new pg.Client(graderOn(hiddenVariantDatabase(DB, 1)));
    await c.connect();
    try {
      for (const sql of [
        'SELECT pg_current_xact_id()',
        'SELECT txid_current()',
        // Red team 5: WAL written as long as a hidden count, read back as the WAL position.
        `SELECT pg_logical_emit_message(false, 'x', 'y')`,
        `SELECT pg_logical_emit_message(true, 'x', 'y')`,
        'SELECT count(*) FROM pg_stat_activity',
        `SELECT pg_tablespace_size('pg_default')`,
      ])
        await expect(c.query(sql), sql).rejects.toThrow(/permission denied for function/);
    } finally {
      await c.end();
    }
  });

  for (const exercise of SQL_EXERCISES.filter((e) => !e.manual)) {
    it(`${exercise.id}: the reference differs on every variant, and a literal of the visible result fails`, async () => {
      const visible = await runQuery(graderOn(DB), exercise.reference, { rowCap: 100_000 });
      for (let i = 1; i <= VARIANTS; i++) {
        const hidden = await runQuery(graderOn(hiddenVariantDatabase(DB, i)), exercise.reference, {
          rowCap: 100_000,
        });
        expect(hidden.rows, `variant ${i}`).not.toEqual(visible.rows);
      }
      const request: GradeRequest = {
        sandbox: 'warehouse',
        kind: 'sql',
        reference: exercise.reference,
        options: exercise.grader,
        answer: sqlLiteral(visible),
      };
      // The literal does pass on the candidate's own data: only the hidden variants catch it.
      expect((await grade(visibleOnly, request)).json().pass).toBe(true);
      const caught = (await grade(withVariants, request)).json();
      expect(caught.pass).toBe(false);
      expect(caught.hint).toMatch(/not on other data of the same shape/);
      expect(caught.explanation).toMatch(/hidden variant 1/);
      // And the reference itself passes everywhere.
      expect((await grade(withVariants, { ...request, answer: exercise.reference })).json().pass).toBe(true);
    });
  }
});

describe('hidden variants (MongoDB)', () => {
  for (const exercise of MONGO_EXERCISES.filter((e) => !e.manual)) {
    it(`${exercise.id}: the reference differs on every variant, and a literal of the visible result fails`, async () => {
      // The candidate's data on their server, as the grader; the variants in the grader store.
      const at = (database: string) =>
        database === 'sandbox'
          ? `mongodb://grader:grader-pw@127.0.0.1:${ferret.port}/${database}?authSource=${database}&directConnection=true`
          : store.url;
      const run = async (database: string) => {
        const client = await new MongoClient(at(database)).connect();
        try {
          return await runPipeline(client, database, exercise.collection!, exercise.reference, {
            docCap: 100_000,
          });
        } finally {
          await client.close();
        }
      };
      const visible = await run('sandbox');
      for (let i = 1; i <= VARIANTS; i++)
        expect((await run(hiddenVariantDatabase('sandbox', i))).rows, `variant ${i}`).not.toEqual(
          visible.rows,
        );
      const request: GradeRequest = {
        sandbox: 'events',
        kind: 'mongo',
        reference: exercise.reference,
        collection: exercise.collection,
        options: exercise.grader,
        answer: mongoLiteral(visible),
      };
      expect((await grade(withVariants, request)).json().pass).toBe(false);
      expect((await grade(withVariants, { ...request, answer: exercise.reference })).json().pass).toBe(true);
    });
  }
});
