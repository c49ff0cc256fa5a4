/**
 * Prepares the PostgreSQL sandbox's standard data at image build time (hack/images/build.sh), so a
 * cold start copies a data directory instead of running initdb and then loading, indexing and
 * analysing two standard copies of the dataset under the sandbox's CPU limit (~15 s at 500m).
 *
 *   node hack/images/postgres/preload.ts <major> <out dir>
 *
 * For every dataset of the catalogue: initdb (as the image's entrypoint runs it: superuser
 * `postgres`, trust on the socket and loopback, C.UTF-8, Etc/UTC; no password, the entrypoint sets
 * the assessment's), then with the seeder's own code (loadDataset) the candidate's data (variant 0)
 * into `sandbox` and the data API's copy (DATA_API_VARIANT) into its collection source database,
 * each with the seeder's marker (`preloaded`, the rows' SHA-256, the DDL's fingerprint). No role,
 * grant or password: the seed Job verifies the marker and applies those, as after a fresh load
 * (seedPostgres). Writes `<out>/<name>@<version>-standard/{pgdata/,preload.env}` and a link
 * `<name>-standard` to a name's latest version, which a bare `retail` resolves to.
 *
 * PostgreSQL refuses to run as root: when root, initdb and the server run as the host's
 * `postgres` user (as the test harness's servers do, hack/cluster/postgres.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  collectionSourceDatabase,
  DATA_API_VARIANT,
  POSTGRES_ADMIN_USER,
  SANDBOX_DATABASE,
} from '@epreuve/crds';
import pg from 'pg';
import { allDatasets, type Dataset, datasetKey, isLatest } from '../../../sandboxes/src/datasets/catalog.ts';
import type { Size } from '../../../sandboxes/src/datasets/retail/v1.ts';
import { loadDataset } from '../../../sandboxes/src/seeder/postgres.ts';
import { postgresVersionBin, reachableBin } from '../../cluster/postgres.ts';

/** The superuser the image's entrypoint creates by default and the operator names (POSTGRES_USER). */
export const PRELOAD_USER = POSTGRES_ADMIN_USER;

/** The directory name the image ships a dataset under (the entrypoint's EPREUVE_PRELOAD_DATASET). */
export const preloadName = (ref: string, size: Size = 'standard') => `${ref}-${size}`;

/** What the entrypoint reads before copying a data directory in: it must match the pod's request. */
export function preloadEnv(major: string, dataset: string, size: Size = 'standard'): string {
  return `user=${PRELOAD_USER}\ndatabase=${SANDBOX_DATABASE}\nmajor=${major}\ndataset=${dataset}\nsize=${size}\n`;
}

/**
 * Preloads every dataset for PostgreSQL `major` (its bin directory `bin`) into `out`; returns the
 * names written. The image ships `standard` (what the seed Job loads); tests use `small`.
 */
export async function preload(
  major: string,
  bin: string,
  out: string,
  log: (l: string) => void = () => {},
  size: Size = 'standard',
): Promise<string[]> {
  mkdirSync(out, { recursive: true });
  const written: string[] = [];
  for (const dataset of allDatasets()) {
    const started = Date.now();
    const name = preloadName(datasetKey(dataset), size);
    const work = mkdtempSync(join(tmpdir(), 'epreuve-pg-preload-'));
    try {
      await preloadOne(dataset, size, bin, work, log);
      const target = join(out, name);
      rmSync(target, { recursive: true, force: true });
      mkdirSync(target);
      renameSync(join(work, 'pgdata'), join(target, 'pgdata'));
      writeFileSync(join(target, 'preload.env'), preloadEnv(major, datasetKey(dataset), size));
      written.push(name);
      // The latest version's bare name: a link, not a second copy in the image.
      if (isLatest(dataset)) {
        symlinkSync(name, join(out, preloadName(dataset.name, size)));
        written.push(preloadName(dataset.name, size));
      }
      log(`preloaded ${name} for PostgreSQL ${major} in ${Date.now() - started} ms`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return written;
}

async function preloadOne(dataset: Dataset, size: Size, bin: string, work: string, log: (l: string) => void) {
  const owner = process.getuid?.() === 0 ? systemUser('postgres') : undefined;
  const exe = owner ? reachableBin(bin) : bin;
  const as = owner ? { uid: owner.uid, gid: owner.gid } : {};
  if (owner) chownSync(work, owner.uid, owner.gid);
  const data = join(work, 'pgdata');
  // The image's environment (LANG=C.UTF-8, no TZ: Debian's /etc/localtime is Etc/UTC), so the
  // data directory's locale and postgresql.conf are what initdb writes in a pod.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', TZ: 'Etc/UTC' };
  execFileSync(
    join(exe, 'initdb'),
    ['-D', data, `--username=${PRELOAD_USER}`, '--auth-local=trust', '--auth-host=trust', '--no-sync'],
    { stdio: 'pipe', env, ...as },
  );
  const server = spawn(
    join(exe, 'postgres'),
    [
      '-D',
      data,
      '-k',
      work,
      '-c',
      'listen_addresses=',
      // A load at build time: no WAL for the tables COPY fills in their own transaction, no fsync
      // (a clean shutdown writes everything before the directory is copied into the image).
      '-c',
      'wal_level=minimal',
      '-c',
      'max_wal_senders=0',
      '-c',
      'fsync=off',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env, ...as },
  );
  let stderr = '';
  server.stderr.on('data', (b) => {
    stderr += b;
  });
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
  const admin = (database: string): pg.ClientConfig => ({ host: work, user: PRELOAD_USER, database });
  try {
    await waitUp(admin('postgres'), server, () => stderr);
    const c = new pg.Client(admin('postgres'));
    await c.connect();
    const targets = [
      { database: SANDBOX_DATABASE, variant: 0 },
      { database: collectionSourceDatabase(SANDBOX_DATABASE), variant: DATA_API_VARIANT },
    ];
    for (const t of targets) await c.query(`CREATE DATABASE ${pg.escapeIdentifier(t.database)}`);
    await Promise.all(
      targets.map(async ({ database, variant }) => {
        const client = new pg.Client(admin(database));
        await client.connect();
        try {
          await client.query('BEGIN');
          await loadDataset(client, { dataset, size, variant, preloaded: true }, (l) =>
            log(`${database}: ${l}`),
          );
          await client.query('COMMIT');
        } finally {
          await client.end();
        }
      }),
    );
    await c.query('CHECKPOINT');
    await c.end();
  } finally {
    // SIGINT: a fast shutdown, which ends with a checkpoint (a clean directory to copy).
    if (server.exitCode === null) server.kill('SIGINT');
  }
  const code = await exited;
  if (code !== 0) throw new Error(`postgres exited with ${code} at shutdown: ${stderr.slice(-2000)}`);
  // Written by the server at start, with the build's options: a pod's start writes its own.
  rmSync(join(data, 'postmaster.opts'), { force: true });
}

async function waitUp(cfg: pg.ClientConfig, server: ReturnType<typeof spawn>, stderr: () => string) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`postgres exited with ${server.exitCode}: ${stderr()}`);
    const c = new pg.Client(cfg);
    c.on('error', () => {});
    try {
      await c.connect();
      await c.end();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`postgres did not answer within 60 s: ${stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function systemUser(name: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

if (import.meta.main) {
  const [major, out] = process.argv.slice(2);
  if (!major || !out) {
    console.error('usage: node hack/images/postgres/preload.ts <major> <out dir>');
    process.exit(2);
  }
  const bin = postgresVersionBin(major);
  for (const name of await preload(major, bin, out, (l) => console.error(`preload: ${l}`))) console.log(name);
}
