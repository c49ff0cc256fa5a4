import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * The GitLab pipeline, run rather than parsed: gitlab-ci-local (the npm devDependency) reads
 * .gitlab-ci.yml as GitLab would and runs jobs on this machine's shell, through `make ci-lint`.
 * Every job it does not run here must be listed in docs/ci.md with the reason.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const run = async (cmd: string, args: string[]) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(cmd, args, {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
      maxBuffer: 16 * 2 ** 20,
    });
    return { code: 0, out: `${stdout}${stderr}`, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: `${e.stdout}${e.stderr}`, stdout: e.stdout };
  }
};
const gitlabCiLocal = join(ROOT, 'node_modules', '.bin', 'gitlab-ci-local');

/** The jobs `make ci-lint` runs: CI_LOCAL_JOBS in the Makefile. */
const ciLocalJobs = () => {
  const m = /^CI_LOCAL_JOBS := (.+)$/m.exec(readFileSync(join(ROOT, 'Makefile'), 'utf8'));
  return m![1]!.trim().split(/\s+/);
};
/** The first column of docs/ci.md's table of jobs gitlab-ci-local does not run here. */
const documentedNotRun = () => {
  const doc = readFileSync(join(ROOT, 'docs', 'ci.md'), 'utf8');
  const section = doc.split('### Jobs `make ci-lint` does not run')[1]!.split(/\n#/)[0]!;
  const firstColumns = section
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => l.split('|')[1]!);
  return firstColumns.flatMap((c) => [...c.matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1]!));
};

describe('gitlab-ci-local', () => {
  it('reads the pipeline as GitLab does: every job, with its stage', async () => {
    const res = await run(gitlabCiLocal, ['--list-json']);
    expect(res.code, res.out).toBe(0);
    const jobs = JSON.parse(res.stdout) as Array<{ name: string; stage: string }>;
    const byName = Object.fromEntries(jobs.map((j) => [j.name, j.stage]));
    expect(byName).toMatchObject({
      lint: 'lint',
      'chart-lint': 'lint',
      test: 'test',
      'deploy-prod': 'deploy',
    });
    // parallel:matrix is expanded, one job per image.
    expect(jobs.filter((j) => j.name.startsWith('build-image: ['))).toHaveLength(5);
  });

  it('every job is either run by `make ci-lint` or listed in docs/ci.md with the reason, and nothing else is listed', async () => {
    const res = await run(gitlabCiLocal, ['--list-json']);
    const names = new Set(
      (JSON.parse(res.stdout) as Array<{ name: string }>).map((j) => j.name.replace(/: \[.*\]$/, '')),
    );
    const run_ = ciLocalJobs();
    const notRun = documentedNotRun();
    expect(run_).toEqual(['lint', 'chart-lint']);
    expect([...run_, ...notRun].sort()).toEqual([...names].sort());
  });

  it('runs the chart-lint job for real through `make ci-lint`, and it passes', async () => {
    const started = Date.now();
    const res = await run('make', ['--no-print-directory', 'ci-lint', 'CI_LOCAL_JOBS=chart-lint']);
    expect(res.out).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(res.out).toContain('kube-score (everything on): no CRITICAL finding');
    expect(res.out).toMatch(/PASS\s+\[[^\]]+\]\s+chart-lint/);
    expect(res.code, res.out.slice(-3000)).toBe(0);
    console.info(`gitlab-ci-local chart-lint: ${Date.now() - started} ms`);
  });

  it('fails, naming it, on a job the pipeline does not have', async () => {
    const res = await run('make', ['--no-print-directory', 'ci-lint', 'CI_LOCAL_JOBS=chart-lnt']);
    expect(res.code).not.toBe(0);
    expect(res.out).toMatch(/chart-lnt.*could not be found/);
  });
});
