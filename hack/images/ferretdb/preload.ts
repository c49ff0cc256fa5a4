/**
 * Prepares the MongoDB sandbox's candidate data at image build time (hack/images/build.sh), so a
 * cold start copies one file instead of inserting ~95 000 documents through FerretDB under the
 * sandbox's CPU limit (about a minute at 500m).
 *
 *   node hack/images/ferretdb/preload.ts <ferretdb binary> <out dir> [small|standard]
 *
 * For every dataset of the catalogue: runs `ferretdb` (SQLite backend, a scratch directory, a
 * loopback port, no authentication), applies the dataset's MongoDB migrations with the seeder's own
 * code (variant 0, what candidates see) into the database `sandbox`, stops it, and writes
 * `<out>/<name>@<version>-<size>.sqlite` — and a link `<name>-<size>.sqlite` to a name's latest version,
 * which a bare `retail` resolves to. FerretDB's SQLite backend keeps one file per database and no
 * database name inside it, so the image's entrypoint copies it in as whatever database the
 * sandbox uses. The seed Job still runs as before on that server: it finds every migration
 * applied, creates the users and computes the reference results.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { allDatasets, datasetKey, isLatest } from '../../../sandboxes/src/datasets/catalog.ts';
import type { Size } from '../../../sandboxes/src/datasets/retail/v1.ts';
import { applyMigrations } from '../../../sandboxes/src/seeder/mongo.ts';
import { freePort, sleep } from '../../cluster/supervisor.ts';

/** The file name the image ships a dataset under (the entrypoint's EPREUVE_PRELOAD_DATASET). */
export const preloadFile = (ref: string, size: Size) => `${ref}-${size}.sqlite`;

/** Loads every dataset into its own SQLite file in `out`; returns the files written. */
export async function preload(
  ferretdb: string,
  out: string,
  size: Size,
  log: (l: string) => void = () => {},
): Promise<string[]> {
  mkdirSync(out, { recursive: true });
  const written: string[] = [];
  for (const dataset of allDatasets()) {
    const dir = mkdtempSync(join(tmpdir(), 'epreuve-preload-'));
    try {
      const started = Date.now();
      await withFerret(ferretdb, dir, async (url) => {
        const client = await new MongoClient(url).connect();
        try {
          await applyMigrations(client, { database: 'sandbox', dataset, size, log });
        } finally {
          await client.close();
        }
      });
      // A clean shutdown checkpoints SQLite's write-ahead log into the file; one left behind would
      // hold data the copied file lacks.
      const wal = join(dir, 'sandbox.sqlite-wal');
      if (existsSync(wal) && statSync(wal).size > 0)
        throw new Error(`ferretdb left ${wal} behind: the database file is incomplete`);
      const refs = [datasetKey(dataset), ...(isLatest(dataset) ? [dataset.name] : [])];
      copyFileSync(join(dir, 'sandbox.sqlite'), join(out, preloadFile(refs[0]!, size)));
      // The latest version's bare name: a link, not a second 90 MB copy in the image.
      for (const alias of refs.slice(1))
        symlinkSync(preloadFile(refs[0]!, size), join(out, preloadFile(alias, size)));
      written.push(...refs.map((ref) => preloadFile(ref, size)));
      const mib = statSync(join(dir, 'sandbox.sqlite')).size / 2 ** 20;
      log(`preloaded ${refs.join(', ')} (${size}): ${mib.toFixed(1)} MiB in ${Date.now() - started} ms`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return written;
}

/** Runs `fn` against a FerretDB on `dir`, then stops it with SIGTERM and waits for its exit. */
async function withFerret(bin: string, dir: string, fn: (url: string) => Promise<void>): Promise<void> {
  const port = await freePort();
  const child = spawn(
    bin,
    [
      `--sqlite-url=file:${dir}/`,
      `--state-dir=${dir}`,
      `--listen-addr=127.0.0.1:${port}`,
      '--debug-addr=-',
      '--telemetry=disable',
      '--log-level=error',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, FERRETDB_HANDLER: 'sqlite' } },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    return exited;
  };
  const url = `mongodb://127.0.0.1:${port}/`;
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`ferretdb exited with ${child.exitCode} while starting`);
      const probe = new MongoClient(url, { serverSelectionTimeoutMS: 500 });
      probe.on('error', () => {});
      const up = await probe
        .db('admin')
        .command({ ping: 1 })
        .then(
          () => true,
          () => false,
        );
      await probe.close();
      if (up) break;
      if (Date.now() > deadline) throw new Error(`ferretdb did not answer on ${url} within 60 s`);
      await sleep(200);
    }
    await fn(url);
  } catch (err) {
    await stop();
    throw err;
  }
  const code = await stop();
  if (code !== 0 && code !== null) throw new Error(`ferretdb exited with ${code} on SIGTERM`);
}

if (import.meta.main) {
  const [bin, out, size = 'standard'] = process.argv.slice(2);
  if (!bin || !out || (size !== 'small' && size !== 'standard')) {
    console.error('usage: node hack/images/ferretdb/preload.ts <ferretdb binary> <out dir> [small|standard]');
    process.exit(2);
  }
  for (const f of await preload(bin, out, size, (l) => console.error(`preload: ${l}`))) console.log(f);
}
