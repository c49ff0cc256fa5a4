import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * The FerretDB image's entrypoint copying a preloaded dataset (preload.ts) into a new data
 * directory, run as the image runs it (sh) with a stand-in `ferretdb` on PATH that only records
 * that it was started. test/integration/seeder-preload.test.ts runs it with the real server.
 */
const ENTRYPOINT = join(import.meta.dirname, 'docker-entrypoint.sh');
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'epreuve-entrypoint-'));
  for (const d of ['bin', 'data', 'preload']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'bin', 'ferretdb'), `#!/bin/sh\necho started > "${dir}/started"\n`);
  chmodSync(join(dir, 'bin', 'ferretdb'), 0o755);
  writeFileSync(join(dir, 'preload', 'retail@1-standard.sqlite'), 'the preloaded file');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the entrypoint; returns what it wrote to stderr. */
function run(env: Record<string, string>): string {
  const out = execFileSync('sh', ['-c', `"${ENTRYPOINT}" 2>&1`], {
    env: {
      PATH: `${dir}/bin:/usr/bin:/bin`,
      FERRETDB_SQLITE_URL: `file:${dir}/data/`,
      EPREUVE_PRELOAD_DIR: join(dir, 'preload'),
      ...env,
    },
  }).toString();
  expect(existsSync(join(dir, 'started'))).toBe(true); // the server starts whatever happened
  return out;
}
const target = () => join(dir, 'data', 'sandbox.sqlite');

describe('the FerretDB entrypoint (preloaded datasets)', () => {
  it('copies the requested dataset in as the named database', () => {
    const out = run({ EPREUVE_PRELOAD_DATASET: 'retail@1-standard', EPREUVE_PRELOAD_DATABASE: 'sandbox' });
    expect(readFileSync(target(), 'utf8')).toBe('the preloaded file');
    expect(existsSync(`${target()}.tmp`)).toBe(false);
    expect(out).toContain(`preload: retail@1-standard copied to ${target()}`);
  });

  it('never replaces a database that exists (a restarted pod keeps what the candidate did)', () => {
    writeFileSync(target(), "the candidate's data");
    const out = run({ EPREUVE_PRELOAD_DATASET: 'retail@1-standard' });
    expect(readFileSync(target(), 'utf8')).toBe("the candidate's data");
    expect(out).toContain(`preload: ${target()} exists; not replaced`);
  });

  it('leaves the load to the seed Job when the image lacks the dataset', () => {
    const out = run({ EPREUVE_PRELOAD_DATASET: 'retail@9-standard' });
    expect(existsSync(target())).toBe(false);
    expect(out).toContain('preload: this image has no retail@9-standard; the seed Job loads it');
  });

  it('refuses names that could leave its directories', () => {
    writeFileSync(join(dir, 'escape.sqlite'), 'outside');
    const out = run({ EPREUVE_PRELOAD_DATASET: '../escape', EPREUVE_PRELOAD_DATABASE: 'sandbox' });
    expect(existsSync(target())).toBe(false);
    expect(out).toContain('preload: ignoring EPREUVE_PRELOAD_DATASET/EPREUVE_PRELOAD_DATABASE');
    const db = run({ EPREUVE_PRELOAD_DATASET: 'retail@1-standard', EPREUVE_PRELOAD_DATABASE: '../x' });
    expect(existsSync(join(dir, 'x.sqlite'))).toBe(false);
    expect(db).toContain('preload: ignoring');
  });

  it('does nothing without a request', () => {
    expect(run({})).not.toContain('preload:');
    expect(existsSync(target())).toBe(false);
  });
});
