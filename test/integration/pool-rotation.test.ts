import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DB_CREDENTIAL_KEYS as KEYS, type SeedPlan } from '@epreuve/crds';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { runRotate } from '../../sandboxes/src/seeder/rotate.ts';
import { runSeed } from '../../sandboxes/src/seeder/run.ts';
import { credentialsDir } from '../harness/grader.ts';

/**
 * A claimed warm pool namespace's rotate Job (sandboxes/src/seeder/rotate.ts) against the real
 * servers: after the operator writes a new candidate password in the Secret (here: the mounted
 * file) and the Job runs, the old password is refused by PostgreSQL, the new one works, and a
 * session opened before the claim is ended. The same for FerretDB with authentication.
 */
const server = inject('postgres');
const token = () => randomBytes(18).toString('base64url');
const suffix = `${process.pid}_${Date.now() % 100000}`;
const DB = `rotate_${suffix}`;
// Roles are server-wide: a candidate role of this test's own.
const CANDIDATE = `candidate_rot_${suffix}`;
const dirs: string[] = [];
const log: string[] = [];
const opts = { waitTimeoutMs: 10_000, log: (l: string) => log.push(l) };

const connect = async (user: string, password: string) => {
  const c = new pg.Client({ host: server.host, port: server.port, user, password, database: DB });
  c.on('error', () => {});
  await c.connect();
  return c;
};

describe('rotating a claimed namespace’s PostgreSQL credentials', () => {
  const oldPassword = token();
  const newPassword = token();
  let dir: string;
  let plan: SeedPlan;

  beforeAll(async () => {
    const admin = new pg.Client({ ...server, database: 'postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DB}`);
    await admin.query(`CREATE ROLE ${CANDIDATE} LOGIN PASSWORD '${oldPassword}'`);
    await admin.query(`GRANT CONNECT ON DATABASE ${DB} TO ${CANDIDATE}`);
    await admin.end();
    dir = credentialsDir({
      [KEYS.database]: DB,
      [KEYS.username]: CANDIDATE,
      [KEYS.password]: oldPassword,
      [KEYS.adminUsername]: server.user,
      [KEYS.adminPassword]: server.password,
      [KEYS.graderUsername]: 'grader',
      [KEYS.graderPassword]: 'unused',
    });
    dirs.push(dir);
    plan = [
      {
        name: 'warehouse',
        kind: 'postgres',
        host: server.host,
        port: server.port,
        credentials: dir,
        dataset: 'retail@1',
      },
    ];
  });

  afterAll(async () => {
    const admin = new pg.Client({ ...server, database: 'postgres' });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${CANDIDATE}`);
    await admin.end();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses the old password and ends sessions opened before, once the new one is set', async () => {
    const before = await connect(CANDIDATE, oldPassword);
    expect((await before.query('SELECT 1 AS one')).rows[0].one).toBe(1);

    // The operator's Secret patch, as the rotate Job's freshly mounted volume shows it.
    writeFileSync(join(dir, KEYS.password), newPassword);
    await runRotate(plan, opts);

    await expect(connect(CANDIDATE, oldPassword)).rejects.toMatchObject({ code: '28P01' });
    const after = await connect(CANDIDATE, newPassword);
    expect((await after.query('SELECT current_user AS u')).rows[0].u).toBe(CANDIDATE);
    await after.end();
    await expect(before.query('SELECT 1')).rejects.toThrow(/terminat|connection error/i);
    expect(log).toContain('warehouse: candidate credentials rotated');
  });

  it('names the sandbox when the database cannot be reached', async () => {
    const unreachable: SeedPlan = [{ ...plan[0]!, port: 1 }];
    await expect(runRotate(unreachable, { ...opts, waitTimeoutMs: 1000 })).rejects.toThrow(
      /rotating warehouse \(postgres at 127\.0\.0\.1:1\) failed/,
    );
  });
});

describe('rotating a claimed namespace’s MongoDB credentials (FerretDB with authentication)', () => {
  const creds = {
    [KEYS.database]: 'sandbox',
    [KEYS.username]: 'candidate',
    [KEYS.password]: token(),
    [KEYS.adminUsername]: 'root',
    [KEYS.adminPassword]: token(),
    [KEYS.graderUsername]: 'grader',
    [KEYS.graderPassword]: token(),
  };
  const ferret = new FerretServer({
    auth: { username: creds[KEYS.adminUsername], password: creds[KEYS.adminPassword] },
  });
  let dir: string;
  let plan: SeedPlan;
  const url = (user: string, password: string) => {
    const u = new URL(ferret.url);
    u.username = user;
    u.password = password;
    u.pathname = '/sandbox';
    return u.toString();
  };
  const ping = async (user: string, password: string) => {
    const c = new MongoClient(url(user, password), { serverSelectionTimeoutMS: 3000 });
    c.on('error', () => {});
    try {
      return await c.db('sandbox').command({ ping: 1 });
    } finally {
      await c.close().catch(() => {});
    }
  };

  beforeAll(async () => {
    await ferret.start();
    dir = credentialsDir(creds);
    dirs.push(dir);
    const u = new URL(ferret.url);
    plan = [
      {
        name: 'events',
        kind: 'mongo',
        host: u.hostname,
        port: Number(u.port),
        credentials: dir,
        dataset: 'retail@1',
      },
    ];
    // FerretDB has no roles: the local cluster's opt-in (sandboxes.mongo.allowRolelessUsers).
    await runSeed(plan, { size: 'small', waitTimeoutMs: 30_000, log: () => {}, allowRolelessUsers: true });
  }, 180_000);

  afterAll(async () => {
    await ferret.stop();
  });

  it('refuses the old password once the new one is set', async () => {
    const old = creds[KEYS.password];
    expect(await ping('candidate', old)).toMatchObject({ ok: 1 });
    const fresh = token();
    writeFileSync(join(dir, KEYS.password), fresh);
    await runRotate(plan, { ...opts, allowRolelessUsers: true });
    await expect(ping('candidate', old)).rejects.toThrow(/auth/i);
    expect(await ping('candidate', fresh)).toMatchObject({ ok: 1 });
  });
});
