/**
 * Checks a merge request's commit subjects against the Conventional Commits 1.0.0 header
 * grammar, with the types of @commitlint/config-conventional:
 *   <type>[(<scope>)][!]: <description>
 *   node hack/ci/conventional-commits.ts <base-sha>   (checks <base-sha>..HEAD, merges excluded)
 * CI passes $CI_MERGE_REQUEST_DIFF_BASE_SHA. Exits 1 naming every offending commit.
 */
import { execFileSync } from 'node:child_process';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TYPES = [
  'build',
  'chore',
  'ci',
  'docs',
  'feat',
  'fix',
  'perf',
  'refactor',
  'revert',
  'style',
  'test',
] as const;
/** @commitlint/config-conventional's header-max-length. */
export const MAX_HEADER = 100;

const HEADER = /^(?<type>[a-z]+)(?:\((?<scope>[^()\s][^()]*)\))?(?<breaking>!)?: (?<description>\S.*)$/;

/** Why a subject is not a conventional-commit header, or null when it is. */
export function subjectProblem(subject: string): string | null {
  // git's own revert subject (`Revert "feat: …"`) is accepted, as commitlint does.
  if (/^Revert ".+"$/.test(subject)) return null;
  if (subject.length > MAX_HEADER) return `longer than ${MAX_HEADER} characters (${subject.length})`;
  const m = HEADER.exec(subject);
  if (!m?.groups) return 'not "<type>[(scope)][!]: <description>"';
  const { type, description } = m.groups as { type: string; description: string };
  if (!(TYPES as readonly string[]).includes(type))
    return `unknown type "${type}" (one of ${TYPES.join(', ')})`;
  if (/\.$/.test(description)) return 'the description ends with a full stop';
  return null;
}

export type Commit = { sha: string; subject: string };

/** One message per offending commit: `<short sha> "<subject>": <why>`. */
export function checkCommits(commits: Commit[]): string[] {
  return commits.flatMap((c) => {
    const problem = subjectProblem(c.subject);
    return problem ? [`${c.sha.slice(0, 12)} "${c.subject}": ${problem}`] : [];
  });
}

/** The non-merge commits in base..HEAD, oldest first. */
export function commitsSince(base: string, cwd = process.cwd()): Commit[] {
  const out = execFileSync('git', ['log', '--no-merges', '--reverse', '--format=%H%x09%s', `${base}..HEAD`], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const tab = line.indexOf('\t');
      return { sha: line.slice(0, tab), subject: line.slice(tab + 1) };
    });
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  const base = process.argv[2];
  if (!base) {
    console.error(
      'usage: node hack/ci/conventional-commits.ts <base-sha>  (e.g. $CI_MERGE_REQUEST_DIFF_BASE_SHA)',
    );
    process.exit(2);
  }
  const commits = commitsSince(base);
  const problems = checkCommits(commits);
  if (problems.length) {
    console.error(
      `${problems.length} of ${commits.length} commit(s) do not follow Conventional Commits ` +
        `(https://www.conventionalcommits.org/en/v1.0.0/):\n  ${problems.join('\n  ')}\n` +
        'Reword them (git rebase -i) as e.g. "feat(api): add assessment extension endpoint".',
    );
    process.exit(1);
  }
  console.log(`${commits.length} commit(s) follow Conventional Commits`);
}
