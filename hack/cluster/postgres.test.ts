import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresVersionBin, reachableBin } from './postgres.ts';

const dirs: string[] = [];
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'epreuve-pg-unit-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) {
    chmodSync(d, 0o755);
    rmSync(d, { recursive: true, force: true });
  }
});

/** A fake installation: bin/postgres and a library, as hack/tools/postgres.sh lays them out. */
function install(under: string): string {
  const root = join(under, '17.10.0-beta.17');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'lib'));
  writeFileSync(join(root, 'bin', 'postgres'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(join(root, 'lib', 'libpq.so.5'), 'lib', { mode: 0o644 });
  return join(root, 'bin');
}

describe('reachableBin', () => {
  it('uses an installation every user can reach as it is', () => {
    const open = scratch();
    chmodSync(open, 0o755);
    const bin = install(open);
    expect(reachableBin(bin, join(scratch(), 'stage'))).toBe(bin);
  });

  it('mirrors one under a private directory (root’s home) once, complete and readable', () => {
    const home = scratch();
    const bin = install(home);
    chmodSync(home, 0o700);
    const stage = join(scratch(), 'stage');
    const staged = reachableBin(bin, stage);
    expect(staged).not.toBe(bin);
    expect(staged.startsWith(`${stage}/17.10.0-beta.17-`)).toBe(true);
    expect(readFileSync(join(staged, '..', 'lib', 'libpq.so.5'), 'utf8')).toBe('lib');
    expect(statSync(join(staged, 'postgres')).mode & 0o005).toBe(0o005);
    expect(readFileSync(join(staged, '..', '.staged'), 'utf8')).toBe(`${join(bin, '..')}\n`);
    // A second caller finds the stamp and copies nothing.
    rmSync(join(staged, '..', 'lib'), { recursive: true });
    expect(reachableBin(bin, stage)).toBe(staged);
    expect(existsSync(join(staged, '..', 'lib'))).toBe(false);
  });
});

describe('postgresVersionBin', () => {
  it('names the major and the pinned ones when a major is not pinned', () => {
    expect(() => postgresVersionBin('14')).toThrow(
      /PostgreSQL 14: hack\/tools\/postgres.sh failed: postgres: no pinned PostgreSQL '14' \(one of: 15 16 17 18\)/,
    );
  });
});
