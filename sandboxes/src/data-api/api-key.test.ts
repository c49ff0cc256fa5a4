import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKey } from './api-key.ts';

const K1 = 'first-key-of-the-pool-0123';
const K2 = 'rotated-key-at-claim-45678';
const K3 = 'third-key-from-the-secret9';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A Secret volume as the kubelet lays it out: the key is a symlink into ..data, swapped atomically. */
function secretVolume(key: string) {
  const dir = mkdtempSync(join(tmpdir(), 'api-key-'));
  dirs.push(dir);
  let n = 0;
  const publish = (value: string) => {
    const version = join(dir, `..v${++n}`);
    rmSync(version, { recursive: true, force: true });
    mkdirSync(version);
    writeFileSync(join(version, 'api-key'), value);
    symlinkSync(`..v${n}`, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  publish(key);
  symlinkSync('..data/api-key', join(dir, 'api-key'));
  return { file: join(dir, 'api-key'), publish };
}

describe('ApiKey', () => {
  it('follows its file when the Secret changes, re-reading at most every recheckMs', () => {
    let now = 0;
    const vol = secretVolume(K1);
    const key = new ApiKey(ApiKey.readFile(vol.file), { file: vol.file, recheckMs: 1000, clock: () => now });
    expect(key.get()).toBe(K1);
    vol.publish(K2);
    now = 500;
    expect(key.get()).toBe(K1); // not re-read yet
    now = 1000;
    expect(key.get()).toBe(K2);
  });

  it('keeps a key set through the endpoint until the file changes again', () => {
    let now = 0;
    const vol = secretVolume(K1);
    const key = new ApiKey(K1, { file: vol.file, clock: () => now });
    key.set(K2);
    now = 5000;
    expect(key.get()).toBe(K2); // the file still says K1: not yet updated, not a change
    vol.publish(K2); // the kubelet catches up
    now = 10_000;
    expect(key.get()).toBe(K2);
    vol.publish(K3);
    now = 15_000;
    expect(key.get()).toBe(K3);
  });

  it('keeps the key in force when the file goes bad, and says why', () => {
    let now = 0;
    const errors: string[] = [];
    const vol = secretVolume(K1);
    const key = new ApiKey(K1, { file: vol.file, clock: () => now, onError: (m) => errors.push(m) });
    vol.publish('short');
    now = 2000;
    expect(key.get()).toBe(K1);
    expect(errors[0]).toMatch(/API_KEY_FILE: .*api-key must hold at least 22 characters/);
  });

  it('refuses short keys, from the start, the endpoint or an unreadable file', () => {
    expect(() => new ApiKey('short')).toThrow(/at least 22 characters/);
    expect(() => new ApiKey(K1).set('tiny')).toThrow(/key: must be at least 22 characters/);
    expect(() => ApiKey.readFile('/nonexistent/api-key')).toThrow(
      /API_KEY_FILE: cannot read \/nonexistent\/api-key/,
    );
  });
});
