import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * hack/build-go-tool.sh on a tiny wrapper module of its own (no dependencies, so it builds in
 * seconds and offline): a copy of the script next to a hack/tools/<name> fixture.
 */
const SCRIPT = join(import.meta.dirname, 'build-go-tool.sh');
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function fixture(toolEnv: string) {
  const root = mkdtempSync(join(tmpdir(), 'epreuve-go-tool-'));
  roots.push(root);
  mkdirSync(join(root, 'hack'));
  copyFileSync(SCRIPT, join(root, 'hack', 'build-go-tool.sh'));
  const tool = join(root, 'hack', 'tools', 'demo');
  for (const cmd of ['one', 'two']) {
    mkdirSync(join(tool, 'cmd', cmd), { recursive: true });
    writeFileSync(
      join(tool, 'cmd', cmd, 'main.go'),
      `package main\n\nvar version = "dev"\n\nfunc main() { println("${cmd}", version) }\n`,
    );
  }
  writeFileSync(
    join(tool, 'go.mod'),
    'module example.com/demo\n\ngo 1.24.0\n\nrequire example.com/up v1.2.3\n',
  );
  writeFileSync(join(tool, 'tool.env'), toolEnv);
  const run = (name = 'demo', extraEnv: Record<string, string> = {}) =>
    spawnSync(join(root, 'hack', 'build-go-tool.sh'), [name], {
      encoding: 'utf8',
      // -mod=mod would fetch the (fake) requirement; the commands import nothing.
      env: {
        ...process.env,
        EPREUVE_CACHE: join(root, 'cache'),
        GOFLAGS: '-mod=mod',
        GOPROXY: 'off',
        ...extraEnv,
      },
    });
  return { root, tool, run };
}

describe('hack/build-go-tool.sh', () => {
  it('builds the binary and every EXTRA_BINARIES entry into one directory keyed by version, then reuses them', () => {
    const { root, run } = fixture(
      [
        'PACKAGE=./cmd/one',
        'BINARY=one',
        'EXTRA_BINARIES="two=./cmd/two"',
        'LDFLAGS="-X main.version=v1.2.3"',
        '',
      ].join('\n'),
    );
    const first = run();
    expect(first.stderr).toMatch(/building one \(example\.com\/up v1\.2\.3\)/);
    expect(first.stderr).toMatch(/building two \(example\.com\/up v1\.2\.3\)/);
    expect(first.status).toBe(0);
    const bin = first.stdout.trim();
    expect(bin).toMatch(new RegExp(`^${root}/cache/tools/demo/v1\\.2\\.3-[0-9a-f]{10}/one$`));
    for (const [name, path] of [
      ['one', bin],
      ['two', join(dirname(bin), 'two')],
    ] as const) {
      const out = spawnSync(path, { encoding: 'utf8' });
      expect(out.stderr.trim()).toBe(`${name} v1.2.3`);
    }

    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout.trim()).toBe(bin);
    expect(second.stderr).not.toMatch(/building/);
    expect(second.stderr).toMatch(/two \(demo v1\.2\.3\) cached/);
  }, 120_000);

  it('keeps other versions by default and deletes them after a build with EPREUVE_PRUNE=1', () => {
    const { root, tool, run } = fixture('PACKAGE=./cmd/one\nBINARY=one\n');
    const pin = (v: string) =>
      writeFileSync(
        join(tool, 'go.mod'),
        `module example.com/demo\n\ngo 1.24.0\n\nrequire example.com/up ${v}\n`,
      );
    const v1 = run();
    expect(v1.status).toBe(0);
    pin('v1.2.4');
    const v2 = run();
    expect(v2.status).toBe(0);
    expect(existsSync(v1.stdout.trim())).toBe(true);
    expect(v2.stderr).not.toMatch(/pruning/);

    pin('v1.2.5');
    const v3 = run('demo', { EPREUVE_PRUNE: '1' });
    expect(v3.status).toBe(0);
    expect(readdirSync(join(root, 'cache', 'tools', 'demo'))).toEqual([basename(dirname(v3.stdout.trim()))]);
    expect(v3.stderr).toMatch(/pruning .*\/tools\/demo\/v1\.2\.3-/);

    // Nothing built, nothing pruned: a cached run never deletes.
    const other = join(root, 'cache', 'tools', 'demo', 'v0.0.1-0123456789');
    mkdirSync(other);
    const cached = run('demo', { EPREUVE_PRUNE: '1' });
    expect(cached.status).toBe(0);
    expect(cached.stderr).not.toMatch(/building|pruning/);
    expect(existsSync(other)).toBe(true);
  }, 120_000);

  it('fails, naming the tool, without a tool.env or a pinned version', () => {
    const { root, run } = fixture('PACKAGE=./cmd/one\nBINARY=one\n');
    const missing = run('nope');
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/build-go-tool: no hack\/tools\/nope\/tool\.env/);

    writeFileSync(join(root, 'hack', 'tools', 'demo', 'go.mod'), 'module example.com/demo\n\ngo 1.24.0\n');
    const unpinned = run();
    expect(unpinned.status).not.toBe(0);
    expect(unpinned.stderr).toMatch(/cannot read the pinned version of demo from its go\.mod/);
    expect(existsSync(join(root, 'cache', 'tools', 'demo'))).toBe(false);
  });
});
