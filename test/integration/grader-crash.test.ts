import { rmSync } from 'node:fs';
import { type GradeRequest, hiddenVariantDatabase, DB_CREDENTIAL_KEYS as KEYS } from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresServer } from '../../hack/cluster/postgres.ts';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';
import { runSeed } from '../../sandboxes/src/seeder/run.ts';
import { credentialsDir } from '../harness/grader.ts';

/**
 * Red team 5: an answer that used more memory than the sandbox allows, only on a hidden variant,
 * got its backend killed; PostgreSQL then ended every session and replayed its WAL, the grader's
 * probe landed during that recovery ("the database system is in recovery mode"), and the answer
 * came back Unavailable: a 503 that withdrew the submission, so a free yes/no question about the
 * hidden data, 30 a minute. The grader now waits for the server to take sessions again
 * (RECOVERY_WAIT_MS): back, the crash was the answer's, a graded failure.
 *
 * This suite crashes its server, so it runs one of its own, not the shared one. The backend is
 * killed with SIGKILL, as the kernel's OOM killer does, after WAL was written so that the recovery
 * outlasts an immediate probe.
 */
const server = new PostgresServer();
const DB = 'sandbox';
const TOKEN = 'grader-crash-token-0123456789abcdef';
let app: FastifyInstance;
let dir: string;

beforeAll(async () => {
  await server.start();
  await server.createDatabase(DB);
  dir = credentialsDir({
    [KEYS.database]: DB,
    [KEYS.username]: 'candidate',
    [KEYS.password]: 'candidate-pw',
    [KEYS.adminUsername]: server.connection.user!,
    [KEYS.adminPassword]: server.password,
    [KEYS.graderUsername]: 'grader',
    [KEYS.graderPassword]: 'grader-pw',
  });
  const sandbox = {
    name: 'warehouse',
    kind: 'postgres' as const,
    host: '127.0.0.1',
    port: server.port,
    credentials: dir,
    hiddenVariants: 1,
  };
  await runSeed([{ ...sandbox, dataset: 'retail@1' }], {
    size: 'small',
    waitTimeoutMs: 30_000,
    log: () => {},
  });
  app = await buildGradeServer({ plan: [sandbox], token: () => TOKEN });
}, 180_000);

afterAll(async () => {
  await app?.close();
  await server.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * The pid of the backend running the answer in `database`: the one connected there for over a
 * second (the reference's run before it is short). The grader's sessions do not report their
 * statement (the seeder turns track_activities off for its role), so the age tells them apart.
 */
async function backendRunning(database: string): Promise<number> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const c = new pg.Client(server.connection);
    c.on('error', () => {});
    await c.connect();
    try {
      const { rows } = await c.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'
           AND backend_start < now() - interval '1 second'`,
        [database],
      );
      if (rows[0]) return rows[0].pid;
    } finally {
      await c.end();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no backend ran an answer in ${database}`);
}

describe('an answer that crashes the database on a hidden variant', () => {
  it('is a graded failure once the server recovers, not a 503 that gives the attempt back', async () => {
    const hidden = hiddenVariantDatabase(DB, 1);
    const request: GradeRequest = {
      sandbox: 'warehouse',
      kind: 'sql',
      reference: 'SELECT count(*) AS n FROM customers',
      options: { orderMatters: false, numericTolerance: 0, ignoreColumnNames: false },
      // Right on the candidate's data; on the hidden variant it sleeps, and is killed meanwhile.
      answer: `SELECT count(*) AS n FROM customers WHERE (SELECT true FROM pg_sleep(CASE WHEN current_database() = '${hidden}' THEN 8 ELSE 0 END))`,
    };
    const grading = app.inject({
      method: 'POST',
      url: '/v1/grade',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: request,
    });
    const pid = await backendRunning(hidden).catch(async (err) => {
      throw new Error(`${err.message}; the grade said ${(await grading).body}`);
    });
    // WAL to replay: the crash recovery then lasts longer than the grader's first probe takes.
    const admin = new pg.Client({ ...server.connection, database: DB });
    admin.on('error', () => {});
    await admin.connect();
    await admin.query(
      `CREATE TABLE pad AS SELECT g, repeat('x', 400) AS x FROM generate_series(1, 300000) g`,
    );
    await admin.end();
    process.kill(pid, 'SIGKILL');
    const res = await grading;
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ pass: false, error: 'SqlError' });
    expect(res.json().explanation).toMatch(/hidden variant 1/);
    // The server did restart: the next grade of a right answer passes everywhere.
    const again = await app.inject({
      method: 'POST',
      url: '/v1/grade',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: { ...request, answer: request.reference },
    });
    expect(again.json()).toMatchObject({ pass: true });
  }, 60_000);
});
