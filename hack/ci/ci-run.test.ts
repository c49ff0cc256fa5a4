import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * .ci/run's order and its background e2e builds, with a stub `make` (on PATH) that logs each call
 * with its start and end, and fails or sleeps where a test says so. The real targets are what
 * `make test` and `make e2e` run; here only the script's own logic is under test.
 */
const RUN = join(import.meta.dirname, '..', '..', '.ci', 'run');
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function fixture() {
  const root = mkdtempSync(join(tmpdir(), 'epreuve-ci-run-'));
  roots.push(root);
  for (const d of ['.ci', 'hack', 'bin', 'node_modules/.bin']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(RUN, join(root, '.ci', 'run'));
  const script = (path: string, body: string) => {
    writeFileSync(join(root, path), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(join(root, path), 0o755);
  };
  const calls = join(root, 'calls.log');
  // FAIL_<target>=1 fails that call, SLOW_<target>=<s> sleeps first, AFTER_<target>=<line> first
  // waits for that line in the log; every call is logged.
  script(
    'bin/make',
    `t="$*"; v=\${t// /_}; v=\${v//-/_}
echo "start $t" >>"${calls}"
slow="SLOW_$v"; [ -z "\${!slow:-}" ] || sleep "\${!slow}"
after="AFTER_$v"; for _ in $(seq 200); do [ -z "\${!after:-}" ] || grep -qx "\${!after}" "${calls}" && break; sleep 0.1; done
echo "end $t" >>"${calls}"
fail="FAIL_$v"; [ -z "\${!fail:-}" ] || { echo "make: *** [$t] Error 2" >&2; exit 2; }`,
  );
  script('hack/install-deps.sh', `echo "install-deps $*" >>"${calls}"`);
  script('node_modules/.bin/node', `echo "ci: 3 passed, 0 failed"`);
  const run = (env: Record<string, string> = {}) => {
    const r = spawnSync(join(root, '.ci', 'run'), {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${join(root, 'bin')}:${process.env.PATH}`, ...env },
    });
    return { ...r, log: calls, calls: readFileSync(calls, 'utf8').trim().split('\n') };
  };
  return { root, run };
}

describe('.ci/run', () => {
  it('builds the test tier first, the e2e tier in the background during make test, then runs make e2e', () => {
    const { run } = fixture();
    // The background builds outlast the tests: make e2e must still wait for them.
    const r = run({ SLOW_node_binaries_images: '2' });
    expect(r.status).toBe(0);
    expect(r.calls[0]).toBe('start deps kube-binaries tools');
    expect(r.calls[2]).toBe('install-deps --e2e');
    const at = (line: string) => r.calls.indexOf(line);
    expect(at('start node-binaries images')).toBeGreaterThan(at('install-deps --e2e'));
    expect(at('start test')).toBeGreaterThan(at('install-deps --e2e'));
    // Both ran at once: the tests ended while the background builds still ran.
    expect(at('end test')).toBeLessThan(at('end node-binaries images'));
    expect(at('start e2e')).toBeGreaterThan(at('end node-binaries images'));
    expect(r.stdout).toMatch(/ci: background e2e builds: exit 0 after \d+s/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('ci: 3 passed, 0 failed');
  }, 30_000);

  it('shows a failed background build, then lets make e2e build it again', () => {
    const { run } = fixture();
    const r = run({ FAIL_node_binaries_images: '1' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /ci: the background e2e builds failed \(exit 2\); the end of \.cache\/ci-e2e-builds\.log:/,
    );
    expect(r.stdout).toContain('  | make: *** [node-binaries images] Error 2');
    expect(r.stdout).toContain('ci: make e2e builds them again in the foreground');
    expect(r.calls).toContain('start e2e');
  }, 30_000);

  it('stops the background builds and fails when make test fails', async () => {
    const { run } = fixture();
    const r = run({
      FAIL_test: '1',
      AFTER_test: 'start node-binaries images',
      SLOW_node_binaries_images: '2',
    });
    expect(r.status).toBe(2);
    expect(r.calls).toContain('start node-binaries images');
    expect(r.calls).not.toContain('start e2e');
    // Killed with its process group: well after its 2 s, it has still not reached its end.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(readFileSync(r.log, 'utf8')).not.toContain('end node-binaries images');
  }, 30_000);
});
