import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_API_VARIANT } from '@epreuve/crds';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { prebuiltFile, readPrebuilt, writePrebuilt } from '../../sandboxes/src/datasets/prebuilt.ts';
import { findExercise } from '../../sandboxes/src/exercises/index.ts';

/** The seeder/grader image's command line, run as the seed Job runs it, against a real PostgreSQL. */
const server = inject('postgres');
const CLI = join(import.meta.dirname, '..', '..', 'sandboxes', 'src', 'cli.ts');
const DB = `sandbox_cli_${process.pid}`;
let dir: string;

const run = (args: string[], env: Record<string, string> = {}, input?: string) =>
  spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, EPREUVE_DATASET_SIZE: 'small', ...env },
    input,
    encoding: 'utf8',
    timeout: 120_000,
  });

function plan(port = server.port) {
  return JSON.stringify([
    {
      name: 'warehouse',
      kind: 'postgres',
      host: '127.0.0.1',
      port,
      dataset: 'retail@1',
      credentials: join(dir, 'warehouse'),
    },
  ]);
}

beforeAll(async () => {
  const c = new pg.Client({ ...server, database: 'postgres' });
  await c.connect();
  await c.query(`CREATE DATABASE ${DB}`);
  await c.end();
  dir = mkdtempSync(join(tmpdir(), 'epreuve-cli-'));
  mkdirSync(join(dir, 'warehouse'));
  const creds = {
    database: DB,
    'admin-username': server.user,
    'admin-password': server.password,
    username: 'candidate',
    password: 'cli-c',
    'grader-username': 'grader',
    'grader-password': 'cli-g',
  };
  for (const [k, v] of Object.entries(creds)) writeFileSync(join(dir, 'warehouse', k), `${v}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('epreuve-sandbox seed', () => {
  it('seeds the plan, printing progress, and exits 0; a second run is a no-op', () => {
    const first = run(['seed'], { EPREUVE_SEED_PLAN: plan() });
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/seeding 1 sandbox\(es\): warehouse \(postgres, retail@1\); size small/);
    expect(first.stdout).toMatch(/loaded retail\.transactions: 1377 rows/);
    expect(first.stdout).toMatch(/seed complete/);
    const second = run(['seed'], { EPREUVE_SEED_PLAN: plan() });
    expect(second.status).toBe(0);
    expect(second.stdout).toMatch(/already loaded; nothing to do/);
  }, 120_000);

  it('exits 2 naming the problem when the plan is bad', () => {
    for (const [bad, message] of [
      ['', /EPREUVE_SEED_PLAN is not set/],
      ['{oops', /EPREUVE_SEED_PLAN is not valid JSON/],
      [
        '[{"name": "x", "kind": "redis", "host": "h", "port": 1, "dataset": "retail", "credentials": "/x"}]',
        /\[0\.kind\]/,
      ],
      [plan().replace('retail@1', 'retail@9'), /unknown dataset "retail@9"; available: retail@1/],
    ] as const) {
      const res = run(['seed'], { EPREUVE_SEED_PLAN: bad });
      expect(res.status).toBe(2);
      expect(res.stderr).toMatch(message);
    }
  });

  it('waits with backoff, then exits 1 naming the sandbox when the database never comes up', () => {
    const res = run(['seed'], { EPREUVE_SEED_PLAN: plan(1), EPREUVE_SEED_WAIT_SECONDS: '3' });
    expect(res.status).toBe(1);
    expect(res.stdout).toMatch(
      /waiting for warehouse \(postgres at 127\.0\.0\.1:1\): .*\(attempt 1, next in 0\.5 s\)/,
    );
    expect(res.stdout).toMatch(/\(attempt 2, next in 1 s\)/);
    expect(res.stderr).toMatch(
      /seeding warehouse \(postgres at 127\.0\.0\.1:1\) failed: .*did not become reachable within 3 s/,
    );
  }, 30_000);

  it('seeds sandboxes side by side, and names every one that failed', () => {
    const two = JSON.parse(plan(1)) as Array<Record<string, unknown>>;
    two.push({ ...two[0], name: 'ledger', port: 2 });
    const res = run(['seed'], { EPREUVE_SEED_PLAN: JSON.stringify(two), EPREUVE_SEED_WAIT_SECONDS: '3' });
    expect(res.status).toBe(1);
    // Both waited at the same time (one 3 s budget, not two in a row) and both are named.
    expect(res.stdout).toMatch(
      /waiting for warehouse[\s\S]*waiting for ledger|waiting for ledger[\s\S]*waiting for warehouse/,
    );
    expect(res.stderr).toMatch(
      /seeding warehouse \(postgres at 127\.0\.0\.1:1\) failed: .*; seeding ledger \(postgres at 127\.0\.0\.1:2\) failed/,
    );
  }, 30_000);
});

describe('epreuve-sandbox prebuild', () => {
  it('writes the standard tables the image ships, which the seed then reads instead of generating', async () => {
    // The tables are prepared only for a load (a loaded database needs none): the dataset's schema
    // dropped before each seed below, as on a new server.
    const unload = async () => {
      const c = new pg.Client({ ...server, database: DB });
      await c.connect();
      await c.query('DROP SCHEMA IF EXISTS retail CASCADE');
      await c.end();
    };
    const out = join(dir, 'prebuilt');
    const res = run(['prebuild', out]);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const retail = resolveDataset('retail@1');
    for (const variant of [0, DATA_API_VARIANT]) {
      expect(res.stdout).toContain(`prebuilt ${prebuiltFile(out, retail, 'standard', variant)} in `);
      const lines: string[] = [];
      const data = readPrebuilt(out, retail, 'standard', variant, (l) => lines.push(l));
      expect(lines).toEqual([]);
      expect(data?.customers.length).toBeGreaterThan(1000);
    }
    // The seed Job's view: the image's directory in EPREUVE_PREBUILT_DIR (here with the small size).
    writePrebuilt(out, retail, 'small', 0);
    await unload();
    const seeded = run(['seed'], { EPREUVE_SEED_PLAN: plan(), EPREUVE_PREBUILT_DIR: out });
    expect(seeded.status).toBe(0);
    expect(seeded.stdout).toMatch(/prepared retail@1 \(small\): prebuilt in \d+ ms/);
    await unload();
    const without = run(['seed'], { EPREUVE_SEED_PLAN: plan() });
    expect(without.stdout).toMatch(/prepared retail@1 \(small\): generated in \d+ ms/);
    expect(run(['prebuild']).status).toBe(2);
  }, 120_000);
});

describe('epreuve-sandbox grade', () => {
  const url = () => `postgres://grader:cli-g@127.0.0.1:${server.port}/${DB}`;
  it('passes the reference (exit 0) and fails a wrong answer (exit 1) with the explanation', () => {
    const exercise = findExercise('accounts-without-transactions');
    const ok = run(['grade', exercise.id, '-', '--postgres', url()], {}, exercise.reference);
    expect(ok.stdout).toMatch(/^PASS: Correct/);
    expect(ok.status).toBe(0);
    const bad = run(['grade', exercise.id, '-', '--postgres', url()], {}, exercise.wrongAnswers[1]!.answer);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/^FAIL: /);
  });

  it('lists the catalogue, and exits 2 on bad usage', () => {
    expect(run(['exercises']).stdout).toMatch(/rank-customers-by-country\s+sql/);
    expect(run(['grade']).status).toBe(2);
    expect(run(['frobnicate']).stderr).toMatch(/usage: epreuve-sandbox/);
  });
});
