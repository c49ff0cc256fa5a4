import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_POSTGRES_VERSION,
  hiddenVariantDatabase,
  DB_CREDENTIAL_KEYS as KEYS,
  POSTGRES_VERSIONS,
  postgresSandbox,
} from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HACK_DIR } from '../../hack/cluster/assets.ts';
import { PostgresServer } from '../../hack/cluster/postgres.ts';
import { SQL_EXERCISES } from '../../sandboxes/src/exercises/sql.ts';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';
import { runSeed } from '../../sandboxes/src/seeder/run.ts';
import { credentialsDir } from '../harness/grader.ts';

/**
 * Every PostgreSQL major a template may name, for real: one server per major from the pinned npm
 * binaries (hack/tools/postgres.sh), seeded by the seed Job's code path (roles, grants, the
 * dataset, a hidden variant), then graded by the grade server the operator runs — every SQL
 * exercise's reference passes (on the visible data and the hidden variant), every wrong answer
 * fails with its explanation, and the candidate's privileges are what the sandbox promises. The
 * other suites run on one server (PG_BIN, else Debian's); `make test` then runs the sandbox and
 * grader suites on each other major (hack/tools/postgres-majors.sh).
 */
const TOKEN = 'postgres-versions-token-0123456789';
const TIMINGS: string[] = [];

describe('the offered majors', () => {
  it('are the enum, default to the newest, and each has pinned binaries', () => {
    expect(postgresSandbox.shape.version.unwrap().options).toEqual([...POSTGRES_VERSIONS]);
    expect(postgresSandbox.parse({ dataset: 'retail' }).version).toBe(DEFAULT_POSTGRES_VERSION);
    expect(DEFAULT_POSTGRES_VERSION).toBe(POSTGRES_VERSIONS.at(-1));
    const pinned = execFileSync(join(HACK_DIR, 'tools', 'postgres.sh'), ['--list'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[0]);
    expect(pinned).toEqual([...POSTGRES_VERSIONS]);
  });

  it('a package whose integrity differs from the pin is refused, and nothing is installed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'epreuve-pg-pin-'));
    try {
      // The script with one pin altered, as a tampered or republished package would look.
      const script = readFileSync(join(HACK_DIR, 'tools', 'postgres.sh'), 'utf8');
      const tampered = script.replace(/(\[17\]="[^ ]+ sha512-)..../, '$1XXXX');
      expect(tampered).not.toBe(script);
      writeFileSync(join(dir, 'postgres.sh'), tampered, { mode: 0o755 });
      const r = spawnSync(join(dir, 'postgres.sh'), ['17'], {
        encoding: 'utf8',
        env: { ...process.env, EPREUVE_CACHE: dir },
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/linux-x64@17\.[^ ]+ has integrity sha512-\S+, pinned sha512-XXXX/);
      expect(readdirSync(join(dir, 'postgres')).filter((f) => !f.startsWith('.'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a major that is not pinned is refused by name', () => {
    let err: { status?: number; stderr?: string } = {};
    try {
      execFileSync(join(HACK_DIR, 'tools', 'postgres.sh'), ['14'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(2);
    expect(err.stderr).toMatch(/no pinned PostgreSQL '14' \(one of: 15 16 17 18\)/);
  });
});

afterAll(() => {
  if (TIMINGS.length) console.log(`PostgreSQL majors:\n${TIMINGS.join('\n')}`);
});

describe.each(POSTGRES_VERSIONS.map((v) => [v]))('PostgreSQL %s', (major) => {
  const server = new PostgresServer({ version: major });
  const DB = 'sandbox';
  const dirs: string[] = [];
  let app: FastifyInstance;
  let t0 = 0;
  const conn = (user: string, password: string, database = DB): pg.ClientConfig => ({
    ...server.connection,
    user,
    password,
    database,
  });
  const grade = async (answer: string, reference: string, options: object) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/grade',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: { sandbox: 'warehouse', kind: 'sql', reference, options, answer },
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { pass: boolean; explanation: string };
  };

  beforeAll(async () => {
    t0 = Date.now();
    await server.start();
    await server.createDatabase(DB);
    const started = Date.now() - t0;
    const creds = credentialsDir({
      [KEYS.database]: DB,
      [KEYS.username]: 'candidate',
      [KEYS.password]: 'candidate-pw',
      [KEYS.adminUsername]: 'postgres',
      [KEYS.adminPassword]: server.password,
      [KEYS.graderUsername]: 'grader',
      [KEYS.graderPassword]: 'grader-pw',
    });
    dirs.push(creds);
    const sandbox = { name: 'warehouse', kind: 'postgres' as const, host: '127.0.0.1', port: server.port };
    await runSeed([{ ...sandbox, dataset: 'retail@1', credentials: creds, hiddenVariants: 1 }], {
      size: 'small',
      waitTimeoutMs: 30_000,
      log: () => {},
    });
    app = await buildGradeServer({
      plan: [{ ...sandbox, credentials: creds, hiddenVariants: 1 }],
      token: () => TOKEN,
      limits: { timeoutMs: 2000 },
    });
    TIMINGS.push(`  ${major}: started in ${started} ms, seeded in ${Date.now() - t0 - started} ms`);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await server.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    TIMINGS.push(`  ${major}: whole suite ${Date.now() - t0} ms`);
  });

  it('is that major', async () => {
    const c = new pg.Client(server.connection);
    await c.connect();
    try {
      const { rows } = await c.query("SELECT current_setting('server_version_num')::int / 10000 AS major");
      expect(String(rows[0].major)).toBe(major);
    } finally {
      await c.end();
    }
  });

  it('gives the candidate read-only data, a work schema, and no way into the hidden variant', async () => {
    const c = new pg.Client(conn('candidate', 'candidate-pw'));
    await c.connect();
    try {
      expect((await c.query('SELECT count(*) FROM customers')).rows[0].count).toBe('61');
      await expect(c.query('DELETE FROM retail.customers')).rejects.toThrow(/permission denied/);
      await expect(c.query('SELECT rolpassword FROM pg_authid')).rejects.toThrow(/permission denied/);
      await c.query('CREATE TABLE work.mine (id int)');
    } finally {
      await c.end();
    }
    const hidden = new pg.Client(conn('candidate', 'candidate-pw', hiddenVariantDatabase(DB, 1)));
    hidden.on('error', () => {});
    await expect(hidden.connect()).rejects.toThrow(/permission denied|not permitted/);
    await hidden.end().catch(() => {});
  });

  it.each(SQL_EXERCISES.map((e) => [e.id, e] as const))(
    '%s: the reference passes, every wrong answer fails with its explanation',
    async (_id, exercise) => {
      const ok = await grade(exercise.reference, exercise.reference, exercise.grader);
      expect(ok.explanation).toMatch(/^Correct/);
      expect(ok.pass).toBe(true);
      for (const wrong of exercise.wrongAnswers) {
        const g = await grade(wrong.answer, exercise.reference, exercise.grader);
        expect(g.pass, wrong.answer).toBe(false);
        expect(g.explanation).toMatch(wrong.explains);
      }
    },
  );

  it('stops a slow answer and refuses a writing one, leaving the data as it was', async () => {
    const { reference, grader } = SQL_EXERCISES[0]!;
    const slow = await grade('SELECT pg_sleep(60)', reference, grader);
    expect(slow.pass).toBe(false);
    expect(slow.explanation).toMatch(/stopped after 2 s/);
    const writing = await grade(
      'WITH d AS (DELETE FROM retail.customers RETURNING *) SELECT * FROM d',
      reference,
      grader,
    );
    expect(writing.pass).toBe(false);
    const c = new pg.Client(conn('postgres', server.password));
    await c.connect();
    try {
      expect((await c.query('SELECT count(*) FROM retail.customers')).rows[0].count).toBe('61');
    } finally {
      await c.end();
    }
  }, 20_000);
});
