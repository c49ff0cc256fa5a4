import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SANDBOX_DATABASE } from '@epreuve/crds';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PRELOAD_USER, preloadEnv } from './preload.ts';

/**
 * The PostgreSQL image's entrypoint copying a preloaded data directory (preload.ts) into an empty
 * $PGDATA, run as the image runs it (bash) with stand-ins for the server's binaries on PATH that
 * record how they were called. test/integration/seeder-pg-preload.test.ts runs the real server on
 * a preloaded directory.
 */
const ENTRYPOINT = join(import.meta.dirname, 'docker-entrypoint.sh');
let dir: string;
const pgdata = () => join(dir, 'data', 'pgdata');

function stub(name: string, body: string) {
  writeFileSync(join(dir, 'bin', name), `#!/bin/bash\n${body}\n`);
  chmodSync(join(dir, 'bin', name), 0o755);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'epreuve-pg-entrypoint-'));
  for (const d of ['bin', 'data', 'preload/retail@1-standard/pgdata/base'])
    mkdirSync(join(dir, d), { recursive: true });
  const pre = join(dir, 'preload', 'retail@1-standard');
  writeFileSync(join(pre, 'preload.env'), preloadEnv('16', 'retail@1'));
  writeFileSync(join(pre, 'pgdata', 'PG_VERSION'), '16\n');
  writeFileSync(join(pre, 'pgdata', 'pg_hba.conf'), 'local all all trust\n');
  writeFileSync(join(pre, 'pgdata', 'base', 'table'), 'the preloaded rows');
  // `postgres --single` answers as the real one does when the password was set (EPREUVE_FAIL: not).
  stub(
    'postgres',
    `if [ "$1" = --single ]; then cat > "${dir}/single.sql"; [ -n "\${EPREUVE_FAIL:-}" ] || echo ' 1: ?column? = "epreuve-password-set"'; exit 0; fi
echo "$@" > "${dir}/started"`,
  );
  stub(
    'initdb',
    `echo "$@" > "${dir}/initdb"; mkdir -p "$PGDATA"; echo 16 > "$PGDATA/PG_VERSION"; : > "$PGDATA/pg_hba.conf"`,
  );
  stub('pg_ctl', 'exit 0');
  stub('id', 'echo 999'); // the image's uid: the entrypoint refuses root, which runs these tests
  stub('psql', 'cat > /dev/null');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the entrypoint; returns its status and what it printed. */
function run(env: Record<string, string>) {
  const r = spawnSync('bash', [ENTRYPOINT], {
    encoding: 'utf8',
    env: {
      PATH: `${dir}/bin:/usr/bin:/bin`,
      PGDATA: pgdata(),
      POSTGRES_USER: 'postgres',
      POSTGRES_DB: 'sandbox',
      POSTGRES_PASSWORD: "pa'ss\\word",
      EPREUVE_PRELOAD_DIR: join(dir, 'preload'),
      ...env,
    },
  });
  return { status: r.status, out: r.stdout + r.stderr };
}
const preloaded = () => existsSync(join(pgdata(), 'base', 'table'));

describe('the PostgreSQL entrypoint (preloaded data directories)', () => {
  it('copies the requested directory in instead of initdb, sets the password from stdin, opens remote access', () => {
    const { status, out } = run({ EPREUVE_PRELOAD_DATASET: 'retail@1-standard' });
    expect(status).toBe(0);
    expect(preloaded()).toBe(true);
    expect(readFileSync(join(pgdata(), 'PG_VERSION'), 'utf8')).toBe('16\n');
    expect(existsSync(join(dir, 'initdb'))).toBe(false);
    expect(existsSync(join(pgdata(), '.epreuve-preloading'))).toBe(false);
    // Quotes doubled, backslash kept (standard_conforming_strings): the password as given.
    expect(readFileSync(join(dir, 'single.sql'), 'utf8')).toContain(
      `ALTER ROLE "postgres" PASSWORD 'pa''ss\\word'`,
    );
    expect(out).not.toContain('pa');
    expect(readFileSync(join(pgdata(), 'pg_hba.conf'), 'utf8')).toBe(
      'local all all trust\n\nhost all all all scram-sha-256\n',
    );
    expect(out).toContain('PostgreSQL preloaded in');
    expect(existsSync(join(dir, 'started'))).toBe(true);
  });

  it('initdb as before when the directory was made for another user or database, saying why', () => {
    for (const env of [{ POSTGRES_USER: 'admin' }, { POSTGRES_DB: 'other' }] as Array<
      Record<string, string>
    >) {
      rmSync(join(dir, 'data'), { recursive: true, force: true });
      const { status, out } = run({ EPREUVE_PRELOAD_DATASET: 'retail@1-standard', ...env });
      expect(status).toBe(0);
      expect(preloaded()).toBe(false);
      expect(existsSync(join(dir, 'initdb'))).toBe(true);
      expect(out).toMatch(
        /preload: retail@1-standard was made for user postgres and database sandbox, not \S+ and \S+; initdb instead/,
      );
    }
  });

  it('initdb as before for a dataset the image lacks, initdb arguments, or a name that could leave its directory', () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ EPREUVE_PRELOAD_DATASET: 'retail@9-standard' }, 'preload: this image has no retail@9-standard'],
      [
        { EPREUVE_PRELOAD_DATASET: 'retail@1-standard', POSTGRES_INITDB_ARGS: '-k' },
        'POSTGRES_INITDB_ARGS is set',
      ],
      [
        { EPREUVE_PRELOAD_DATASET: '../preload/retail@1-standard' },
        'preload: ignoring EPREUVE_PRELOAD_DATASET',
      ],
    ];
    for (const [env, why] of cases) {
      rmSync(join(dir, 'data'), { recursive: true, force: true });
      rmSync(join(dir, 'initdb'), { force: true });
      const { status, out } = run(env);
      expect(status).toBe(0);
      expect(preloaded()).toBe(false);
      expect(existsSync(join(dir, 'initdb'))).toBe(true);
      expect(out).toContain(why);
    }
  });

  it('never touches a data directory that exists (a restarted pod keeps what the candidate did)', () => {
    mkdirSync(pgdata(), { recursive: true });
    writeFileSync(join(pgdata(), 'PG_VERSION'), '16\n');
    const { status, out } = run({ EPREUVE_PRELOAD_DATASET: 'retail@1-standard' });
    expect(status).toBe(0);
    expect(preloaded()).toBe(false);
    expect(existsSync(join(dir, 'initdb'))).toBe(false);
    expect(out).not.toContain('preload');
  });

  it('fails, leaving nothing behind, when the password could not be set; redoes an interrupted copy', () => {
    const failed = run({ EPREUVE_PRELOAD_DATASET: 'retail@1-standard', EPREUVE_FAIL: '1' });
    expect(failed.status).toBe(1);
    expect(failed.out).toContain('could not set the password of postgres');
    expect(existsSync(join(pgdata(), 'PG_VERSION'))).toBe(false);
    // A copy cut short after PG_VERSION (the marker still there) is started over, not trusted.
    writeFileSync(join(pgdata(), 'PG_VERSION'), '16\n');
    writeFileSync(join(pgdata(), '.epreuve-preloading'), '');
    const again = run({ EPREUVE_PRELOAD_DATASET: 'retail@1-standard' });
    expect(again.status).toBe(0);
    expect(preloaded()).toBe(true);
    expect(existsSync(join(pgdata(), '.epreuve-preloading'))).toBe(false);
  });

  it('without a request, initdb as before', () => {
    const { status, out } = run({});
    expect(status).toBe(0);
    expect(existsSync(join(dir, 'initdb'))).toBe(true);
    expect(out).not.toContain('preload');
  });
});

describe('preload.ts', () => {
  it("makes its directories for the operator's admin user and database (both typed once in crds)", () => {
    expect(preloadEnv('16', 'retail@1')).toBe(
      `user=${PRELOAD_USER}\ndatabase=${SANDBOX_DATABASE}\nmajor=16\ndataset=retail@1\nsize=standard\n`,
    );
    expect(PRELOAD_USER).toBe('postgres');
  });
});
