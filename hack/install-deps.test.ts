import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * hack/install-deps.sh's Go check, on a copy of the script beside fixture wrapper modules, with a
 * PATH of its own: a fake `go` (or none) and a dpkg-query that says every package is installed, so
 * nothing is ever installed for real.
 */
const SCRIPT = join(import.meta.dirname, 'install-deps.sh');
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function run(goVersion: string | undefined) {
  const root = mkdtempSync(join(tmpdir(), 'epreuve-install-deps-'));
  roots.push(root);
  const hack = join(root, 'hack');
  mkdirSync(join(hack, 'kube'), { recursive: true });
  mkdirSync(join(hack, 'tools', 'a'), { recursive: true });
  mkdirSync(join(hack, 'tools', 'b'), { recursive: true });
  copyFileSync(SCRIPT, join(hack, 'install-deps.sh'));
  writeFileSync(join(hack, 'kube', 'go.mod'), 'module k\n\ngo 1.26.0\n');
  writeFileSync(join(hack, 'tools', 'a', 'go.mod'), 'module a\n\ngo 1.26.6\n');
  writeFileSync(join(hack, 'tools', 'b', 'go.mod'), 'module b\n\ngo 1.25.0\n');
  const bin = join(root, 'bin');
  mkdirSync(bin);
  for (const tool of ['bash', 'sed', 'sort', 'head', 'tail', 'dirname', 'grep'])
    symlinkSync(
      spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(),
      join(bin, tool),
    );
  writeFileSync(join(bin, 'dpkg-query'), '#!/bin/sh\nprintf "install ok installed"\n', { mode: 0o755 });
  if (goVersion)
    writeFileSync(join(bin, 'go'), `#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo go${goVersion}\n`, {
      mode: 0o755,
    });
  return spawnSync(join(bin, 'bash'), [join(hack, 'install-deps.sh')], {
    encoding: 'utf8',
    env: { PATH: bin },
  });
}

describe('hack/install-deps.sh: Go', () => {
  it('passes with a Go at least as new as the newest go line', () => {
    const r = run('1.26.6');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('refuses an older Go, naming what is needed and what it found', () => {
    const r = run('1.26.0');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /Go >= 1\.26\.6 is needed .*found 1\.26\.0; Debian bookworm's golang-go \(1\.19\) is too old/,
    );
  });

  it('refuses no Go at all instead of installing Debian’s', () => {
    const r = run(undefined);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Go >= 1\.26\.6 is needed .*found no go on PATH/);
  });
});
