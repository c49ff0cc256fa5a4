import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, lstatSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectionSourceDatabase, DEFAULT_POSTGRES_VERSION, hiddenVariantDatabase } from '@epreuve/crds';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresServer, postgresVersionBin, reachableBin } from '../../hack/cluster/postgres.ts';
import { freePort } from '../../hack/cluster/supervisor.ts';
import { preload } from '../../hack/images/postgres/preload.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { seedPostgresServer } from '../../sandboxes/src/seeder/postgres.ts';

/**
 * A PostgreSQL sandbox whose data the image preloaded (hack/images/postgres/preload.ts, as build.sh
 * runs it, small size to keep it short): the real server started through the image's entrypoint
 * with the operator's EPREUVE_PRELOAD_DATASET (the directory copied in, the admin's password set),
 * then seeded by the seed Job's code. Everything a role can see — roles and their settings,
 * databases and their privileges, schemas, tables, owners, grants, function privileges, default
 * privileges, statistics, the rows — is what a fresh seed on a fresh server gives; a marker that
 * does not match what this seeder loads is loaded again; a preloaded database the assessment does
 * not use is dropped.
 */
const MAJOR = DEFAULT_POSTGRES_VERSION;
const ENTRYPOINT = join(
  import.meta.dirname,
  '..',
  '..',
  'hack',
  'images',
  'postgres',
  'docker-entrypoint.sh',
);
const dataset = resolveDataset('retail@1');
const candidate = { username: 'candidate', password: `cand-${process.pid}-0123456789` };
const grader = { username: 'grader', password: `grader-${process.pid}-0123456789` };
const ADMIN_PASSWORD = `ad'min-${process.pid}\\0123456789`;
const owner =
  process.getuid?.() === 0
    ? { uid: Number(id('-u')), gid: Number(id('-g')) } // PostgreSQL refuses root
    : undefined;
function id(flag: string): string {
  return execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim();
}

let dir: string;
let names: string[];
const servers: Array<{ child: ChildProcess; exited: Promise<unknown> }> = [];
let fresh: PostgresServer;

/** Starts the real server through the image's entrypoint on an empty PGDATA; returns its admin config and output. */
async function startPreloaded(name: string): Promise<{ admin: pg.ClientConfig; output: () => string }> {
  const bin = owner ? reachableBin(postgresVersionBin(MAJOR)) : postgresVersionBin(MAJOR);
  const root = mkdtempSync(join(dir, `${name}-`));
  if (owner) chownSync(root, owner.uid, owner.gid);
  const port = await freePort();
  const child = spawn(
    'bash',
    [
      ENTRYPOINT,
      'postgres',
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${root}`,
    ],
    {
      env: {
        PATH: `${bin}:/usr/bin:/bin`,
        PGDATA: join(root, 'pgdata'),
        POSTGRES_USER: 'postgres',
        POSTGRES_DB: 'sandbox',
        POSTGRES_PASSWORD: ADMIN_PASSWORD,
        EPREUVE_PRELOAD_DATASET: 'retail-small', // a bare name: the link to the latest version
        EPREUVE_PRELOAD_DIR: dir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(owner ?? {}),
    },
  );
  let output = '';
  child.stdout!.on('data', (b) => (output += b));
  child.stderr!.on('data', (b) => (output += b));
  servers.push({ child, exited: new Promise((r) => child.once('exit', r)) });
  // Over TCP with the password (127.0.0.1 is trusted, as initdb leaves it: the host line checks
  // a remote client; here the password still has to be the one set, for psql's scram on ::1).
  const admin = { host: '127.0.0.1', port, user: 'postgres', password: ADMIN_PASSWORD, database: 'sandbox' };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const c = new pg.Client(admin);
    c.on('error', () => {});
    try {
      await c.connect();
      await c.end();
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`the preloaded server did not start: ${(err as Error).message}\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { admin, output: () => output };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'epreuve-pg-preload-test-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  names = await preload(MAJOR, postgresVersionBin(MAJOR), dir, () => {}, 'small');
  fresh = await new PostgresServer({ version: MAJOR }).start();
}, 300_000);
afterAll(async () => {
  for (const s of servers) {
    s.child.kill('SIGINT');
    await s.exited;
  }
  await fresh?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Everything a role could read that a seed decides, one database at a time (no OIDs, no timestamps). */
async function catalog(admin: pg.ClientConfig, database: string): Promise<Record<string, unknown>> {
  const c = new pg.Client({ ...admin, database });
  await c.connect();
  try {
    const q = async (sql: string) => (await c.query(sql)).rows;
    const out: Record<string, unknown> = {
      roles: await q(
        `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolconnlimit, rolbypassrls
         FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1`,
      ),
      roleSettings: await q(
        `SELECT coalesce(d.datname, '*') AS db, r.rolname, s.setconfig FROM pg_db_role_setting s
         JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase ORDER BY 1, 2`,
      ),
      // Not the locale: the harness's fresh server is initdb'd with C, the image's with C.UTF-8 (the
      // preload runs initdb as the image's entrypoint does; build.sh's image is checked by e2e).
      databases: await q(
        `SELECT datname, pg_get_userbyid(datdba) AS owner, datacl::text[], encoding
         FROM pg_database ORDER BY 1`,
      ),
      schemas: await q(
        `SELECT nspname, pg_get_userbyid(nspowner) AS owner, nspacl::text[] FROM pg_namespace
         WHERE nspname !~ '^pg_(toast|temp)' ORDER BY 1`,
      ),
      relations: await q(
        `SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner, c.relacl::text[], c.reltuples
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' ORDER BY 1, 2`,
      ),
      functions: await q(
        `SELECT p.oid::regprocedure::text AS fn, pg_get_userbyid(p.proowner) AS owner, p.proacl::text[], p.prosecdef
         FROM pg_proc p WHERE p.proacl IS NOT NULL OR p.pronamespace <> 'pg_catalog'::regnamespace ORDER BY 1`,
      ),
      defaultAcl: await q(
        `SELECT pg_get_userbyid(defaclrole) AS role, defaclnamespace::regnamespace::text AS nsp, defaclobjtype, defaclacl::text[]
         FROM pg_default_acl ORDER BY 1, 2, 3`,
      ),
      statistics: await q(
        `SELECT schemaname, tablename, attname, null_frac, n_distinct FROM pg_stats
         WHERE schemaname = 'retail' ORDER BY 1, 2, 3`,
      ),
    };
    if ((await q(`SELECT to_regclass('retail.customers') AS t`))[0]!.t) {
      const rows: Record<string, unknown> = {};
      for (const { table } of dataset.postgres.tables)
        rows[table] = (
          await q(
            `SELECT count(*)::int AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS h FROM retail.${table} t`,
          )
        )[0];
      out.rows = rows;
      out.marker = await q(`SELECT dataset, size, variant, tables_sha256, layout FROM retail._epreuve_seed`);
    }
    return out;
  } finally {
    await c.end();
  }
}

const DATABASES = [
  'sandbox',
  hiddenVariantDatabase('sandbox', 1),
  collectionSourceDatabase('sandbox'),
  'postgres',
  'template1',
];

describe('preloaded PostgreSQL data directories', () => {
  it('writes one directory per dataset version and links the bare name to the latest', () => {
    expect(names).toEqual(['retail@1-small', 'retail-small']);
    expect(lstatSync(join(dir, 'retail-small')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'retail-small'))).toBe('retail@1-small');
  });

  it('seed to exactly what a fresh seed gives, loading only what the marker does not match', async () => {
    const log: string[] = [];
    const { admin, output } = await startPreloaded('checked');
    expect(output()).toContain('PostgreSQL preloaded in');
    expect(output()).not.toContain(ADMIN_PASSWORD);
    // The data API's copy claims other rows than this seeder's: loaded again, not trusted.
    const source = new pg.Client({ ...admin, database: collectionSourceDatabase('sandbox') });
    await source.connect();
    await source.query(`UPDATE retail._epreuve_seed SET tables_sha256 = repeat('0', 64)`);
    await source.query(
      `DELETE FROM retail.exchange_rates WHERE ctid IN (SELECT ctid FROM retail.exchange_rates LIMIT 1)`,
    );
    await source.end();
    const plan = {
      dataset,
      size: 'small' as const,
      candidate,
      grader,
      hiddenVariants: 1,
      collectionSource: { dataset, size: 'small' as const },
    };
    await seedPostgresServer(admin, { ...plan, log: (l) => log.push(l) });
    const freshAdmin = await fresh.createDatabase('sandbox');
    await seedPostgresServer(freshAdmin, plan);

    expect(log).toContain(
      'postgres: retail@1 (small) preloaded at image build and verified; nothing to load',
    );
    expect(log.filter((l) => l.startsWith('postgres: loaded retail.'))).toEqual([]);
    expect(log).toContainEqual(
      expect.stringMatching(
        /^postgres \(sandbox_source\): not using the preloaded retail@1 \(small\): its rows differ from this seeder's \(sha256 000000000000…, this seeder's [0-9a-f]{12}…\); loading it$/,
      ),
    );
    expect(log).toContainEqual(
      expect.stringMatching(/^postgres \(sandbox_source\): loaded retail\.transactions: /),
    );
    for (const db of DATABASES)
      expect.soft(await catalog(admin, db), db).toEqual(await catalog(freshAdmin, db));

    // The candidate gets in with the seeded password and reads what a fresh seed lets them read.
    const cand = new pg.Client({ ...admin, ...candidate, user: candidate.username });
    await cand.connect();
    expect((await cand.query('SELECT count(*)::int AS n FROM retail.customers')).rows[0].n).toBeGreaterThan(
      0,
    );
    await expect(cand.query('SELECT * FROM retail._epreuve_seed')).rejects.toThrow(/permission denied/);
    await cand.end();
  }, 180_000);

  it('drop the preloaded data API copy when the assessment has no use for it', async () => {
    const log: string[] = [];
    const { admin } = await startPreloaded('unused');
    await seedPostgresServer(admin, { dataset, size: 'small', candidate, grader, log: (l) => log.push(l) });
    expect(log).toContain(
      `postgres: dropped ${collectionSourceDatabase('sandbox')}, preloaded by the image, unused by this assessment`,
    );
    const c = new pg.Client(admin);
    await c.connect();
    const dbs = (await c.query(`SELECT datname FROM pg_database ORDER BY 1`)).rows.map((r) => r.datname);
    await c.end();
    expect(dbs).toEqual(['postgres', 'sandbox', 'template0', 'template1']);
  }, 120_000);
});
