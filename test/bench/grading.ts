/**
 * Grading latency benchmark (make bench): a passing answer POSTed to the grade server over
 * loopback HTTP — the candidate's data and two hidden variants graded, production logging on —
 * against the same query run directly with `pg` on the same database in the same run (connect,
 * query, close, as a plain client would). Goal: p95 overhead ≤ 150 ms. The API's own relay (one
 * more loopback hop and a Submission write) is not in this figure.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { DB_CREDENTIAL_KEYS as KEYS } from '../../crds/src/index.ts';
import { PostgresServer } from '../../hack/cluster/postgres.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { SQL_EXERCISES } from '../../sandboxes/src/exercises/sql.ts';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';
import { seedHiddenVariants, seedPostgres } from '../../sandboxes/src/seeder/postgres.ts';
import { ms, percentile } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40);
const VARIANTS = 2;
const TOKEN = 'bench-grader-token-0123456789abcdef';
const exercise = SQL_EXERCISES.find((e) => e.id === 'rank-customers-by-country')!;

const server = await new PostgresServer().start();
const dir = mkdtempSync(join(tmpdir(), 'epreuve-bench-grading-'));
try {
  const admin = new pg.Client(server.connection);
  await admin.connect();
  await admin.query('CREATE DATABASE sandbox');
  await admin.end();
  const users = {
    candidate: { username: 'candidate', password: 'candidate-pw' },
    grader: { username: 'grader', password: 'grader-pw' },
  };
  const dataset = resolveDataset('retail@1');
  const started = Date.now();
  await seedPostgres({ ...server.connection, database: 'sandbox' }, { dataset, size: 'standard', ...users });
  await seedHiddenVariants(
    { ...server.connection, database: 'sandbox' },
    { dataset, count: VARIANTS, ...users },
  );
  console.log(`seeded retail@1 (standard) and ${VARIANTS} hidden variants in ${Date.now() - started} ms`);

  const credentials = {
    [KEYS.database]: 'sandbox',
    [KEYS.graderUsername]: 'grader',
    [KEYS.graderPassword]: 'grader-pw',
  };
  for (const [k, v] of Object.entries(credentials)) writeFileSync(join(dir, k), v);
  const app = await buildGradeServer({
    plan: [
      {
        name: 'warehouse',
        kind: 'postgres',
        host: '127.0.0.1',
        port: server.port,
        credentials: dir,
        hiddenVariants: VARIANTS,
      },
    ],
    token: () => TOKEN,
    // Production logging: every request logged as JSON (to a sink, so the terminal stays readable).
    log: pino({ level: 'info' }, pino.destination('/dev/null')),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1/grade`;
  const body = JSON.stringify({
    sandbox: 'warehouse',
    kind: 'sql',
    reference: exercise.reference,
    options: exercise.grader,
    answer: exercise.reference,
  });

  const graded = async () => {
    const t = performance.now();
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body,
    });
    const out = (await res.json()) as { pass?: boolean };
    if (!out.pass) throw new Error(`the reference did not pass: ${JSON.stringify(out)}`);
    return performance.now() - t;
  };
  const direct = async () => {
    const t = performance.now();
    const c = new pg.Client({
      ...server.connection,
      database: 'sandbox',
      user: 'grader',
      password: 'grader-pw',
    });
    await c.connect();
    await c.query(exercise.reference);
    await c.end();
    return performance.now() - t;
  };

  // Warm both paths (reference results cached, connections and JIT warm), then alternate rounds.
  for (let i = 0; i < 3; i++) {
    await graded();
    await direct();
  }
  const g: number[] = [];
  const d: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    g.push(await graded());
    d.push(await direct());
  }
  const overhead95 = percentile(g, 95) - percentile(d, 95);
  console.log(`grading a passing answer, ${ROUNDS} rounds (candidate data + ${VARIANTS} hidden variants):`);
  console.log(`  grade server  p50 ${ms(percentile(g, 50))}  p95 ${ms(percentile(g, 95))}`);
  console.log(`  direct pg     p50 ${ms(percentile(d, 50))}  p95 ${ms(percentile(d, 95))}`);
  console.log(
    `  ratio p95 ${(percentile(g, 95) / percentile(d, 95)).toFixed(2)}×; p95 overhead ${ms(overhead95)} (goal ≤ 150 ms): ${overhead95 <= 150 ? 'met' : 'NOT met'}`,
  );
  await app.close();
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
