import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCommits, commitsSince, subjectProblem } from './conventional-commits.ts';

const SCRIPT = join(import.meta.dirname, 'conventional-commits.ts');

describe('conventional-commit subjects', () => {
  it.each([
    'feat: add the sandbox gateway',
    'fix(api): refuse expired candidate links',
    'feat(operator)!: rename status.sandboxes[].host',
    'chore(deps): bump vitest to 4.1.12',
    'ci: cache ~/.cache/epreuve',
    'docs(chart): values reference',
    'refactor(operator/workqueue): split backoff',
    'Revert "feat: add the sandbox gateway"',
  ])('accepts %j', (subject) => {
    expect(subjectProblem(subject)).toBeNull();
  });

  it.each([
    ['Chart: the sandbox gateway', /not "<type>\[\(scope\)\]\[!\]: <description>"/],
    ['feat:missing space', /not "<type>/],
    ['feat(): empty scope', /not "<type>/],
    ['Feat: capital type', /not "<type>/],
    ['feature: add things', /unknown type "feature"/],
    ['wip: halfway there', /unknown type "wip"/],
    ['fix: trailing full stop.', /full stop/],
    ['feat: ', /not "<type>/],
    [`feat: ${'x'.repeat(100)}`, /longer than 100 characters \(106\)/],
  ])('rejects %j', (subject, why) => {
    expect(subjectProblem(subject)).toMatch(why);
  });

  it('names each offending commit by short sha and subject', () => {
    const problems = checkCommits([
      { sha: 'a'.repeat(40), subject: 'feat: fine' },
      { sha: '0123456789abcdef0123456789abcdef01234567', subject: 'Update stuff' },
    ]);
    expect(problems).toEqual([`0123456789ab "Update stuff": not "<type>[(scope)][!]: <description>"`]);
  });
});

/** A throwaway repository: an unchecked first commit (the base), then the given subjects. */
function repoWith(subjects: string[]) {
  const repo = mkdtempSync(join(tmpdir(), 'epreuve-cc-'));
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], {
      cwd: repo,
      encoding: 'utf8',
    }).trim();
  git('init', '-q', '-b', 'main');
  git('commit', '-q', '--allow-empty', '-m', 'initial, not checked');
  const base = git('rev-parse', 'HEAD');
  for (const s of subjects) git('commit', '-q', '--allow-empty', '-m', s);
  return { repo, base, head: git('rev-parse', 'HEAD') };
}
const run = (repo: string, ...args: string[]) =>
  spawnSync(process.execPath, [SCRIPT, ...args], { cwd: repo, encoding: 'utf8' });

describe('the merge request check (real git)', () => {
  it('reads base..HEAD oldest first', () => {
    const { repo, base } = repoWith(['feat(api): list assessments', 'fixed the thing']);
    expect(commitsSince(base, repo).map((c) => c.subject)).toEqual([
      'feat(api): list assessments',
      'fixed the thing',
    ]);
  });

  it('exits 1 and names the offending commit', () => {
    const { repo, base, head } = repoWith(['feat(api): list assessments', 'fixed the thing']);
    const res = run(repo, base);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('1 of 2 commit(s) do not follow Conventional Commits');
    expect(res.stderr).toContain(`${head.slice(0, 12)} "fixed the thing": not "<type>`);
  });

  it('exits 0 when every commit conforms', () => {
    const { repo, base } = repoWith(['feat(api): list assessments', 'test(api): cover the listing']);
    const res = run(repo, base);
    expect(res.stdout).toContain('2 commit(s) follow Conventional Commits');
    expect(res.status).toBe(0);
  });

  it('exits 2 with a usage line without a base, and fails on an unknown base', () => {
    const { repo } = repoWith([]);
    const res = run(repo);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/usage: node hack\/ci\/conventional-commits.ts <base-sha>/);
    expect(() => commitsSince('0'.repeat(40), repo)).toThrow(
      /bad revision|unknown revision|Invalid revision/,
    );
  });
});
