import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from './check-gitlab-ci.ts';

/** The pipeline's shell steps, run for real: git against a local remote, the pinned helm. */
const HACK_CI = join(REPO_ROOT, 'hack', 'ci');
const NODE_BIN = dirname(process.execPath);
const toolCaches = Object.fromEntries(
  ['EPREUVE_CACHE', 'GOCACHE', 'GOMODCACHE', 'GOPATH', 'GOPROXY', 'GOFLAGS'].flatMap((name) =>
    process.env[name] ? [[name, process.env[name] as string]] : [],
  ),
);
const run = (cmd: string, args: string[], env: Record<string, string> = {}, cwd = REPO_ROOT) =>
  spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    // A clean environment: nothing of the caller's CI_* or tokens leaks in. Where the pinned tools
    // are cached does (EPREUVE_CACHE, Go's caches), or helm-package.sh looks for helm elsewhere.
    env: {
      PATH: `${NODE_BIN}:/usr/local/bin:/usr/bin:/bin`,
      HOME: process.env.HOME ?? '/root',
      ...toolCaches,
      ...env,
    },
  });

describe('hack/ci/deploy.sh (GitOps bump, pushed to a real git remote)', () => {
  /** A bare "GitLab" remote holding argocd/values, and a CI checkout with the deploy scripts. */
  function setup() {
    const root = mkdtempSync(join(tmpdir(), 'epreuve-deploy-'));
    const remote = join(root, 'server', 'platform', 'epreuve.git');
    mkdirSync(remote, { recursive: true });
    const git = (cwd: string, ...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], {
        cwd,
        encoding: 'utf8',
      }).trim();
    git(remote, 'init', '-q', '--bare', '-b', 'main');
    // GitLab accepts push options (-o ci.skip); a bare git remote must be told to.
    git(remote, 'config', 'receive.advertisePushOptions', 'true');
    const work = join(root, 'work');
    mkdirSync(work);
    git(work, 'init', '-q', '-b', 'main');
    cpSync(join(REPO_ROOT, 'argocd', 'values'), join(work, 'argocd', 'values'), { recursive: true });
    cpSync(HACK_CI, join(work, 'hack', 'ci'), { recursive: true });
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'initial');
    git(work, 'push', '-q', remote, 'main');
    // The yaml package, as `npm ci` leaves it in CI.
    cpSync(join(REPO_ROOT, 'node_modules', 'yaml'), join(work, 'node_modules', 'yaml'), { recursive: true });
    const env = {
      GITOPS_TOKEN: 'glpat-not-a-real-token',
      CI_SERVER_URL: `file://${join(root, 'server')}`,
      CI_PROJECT_PATH: 'platform/epreuve',
      CI_DEFAULT_BRANCH: 'main',
      CI_PIPELINE_URL: 'https://gitlab.example.com/platform/epreuve/-/pipelines/1',
    };
    const deploy = (args: string[], extra: Record<string, string> = env) =>
      run('bash', [join(work, 'hack', 'ci', 'deploy.sh'), ...args], extra, work);
    const show = (path: string) => git(remote, 'show', `main:${path}`);
    return { remote, work, env, deploy, show, git };
  }

  it('commits only the image.tag change on the default branch, conventionally, and skips a no-op', () => {
    const { deploy, show, git, remote } = setup();
    const before = show('argocd/values/dev.yaml');
    const res = deploy(['dev', 'abc1234']);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('deploy: dev → abc1234 pushed to main; Argo CD syncs it\n');
    expect(res.status).toBe(0);
    const after = show('argocd/values/dev.yaml');
    expect(parse(after).image.tag).toBe('abc1234');
    expect(after.split('\n').filter((l, i) => l !== before.split('\n')[i])).toEqual(['  tag: "abc1234"']);
    expect(git(remote, 'log', '-1', '--format=%s%n%b', 'main')).toBe(
      'chore(deploy): dev image.tag abc1234\nPipeline: https://gitlab.example.com/platform/epreuve/-/pipelines/1',
    );
    expect(git(remote, 'diff', '--name-only', 'main~1', 'main')).toBe('argocd/values/dev.yaml');
    // Second run with the same tag: nothing to commit, nothing pushed.
    const again = deploy(['dev', 'abc1234']);
    expect([again.status, again.stdout]).toEqual([0, 'deploy: dev already runs abc1234\n']);
    expect(git(remote, 'rev-list', '--count', 'main')).toBe('2');
  });

  it('deploys on top of a default branch that moved since the pipeline started', () => {
    const { deploy, show, git, remote, work } = setup();
    // Someone else pushed meanwhile: the checkout is behind the remote.
    const other = join(work, '..', 'other');
    git(join(work, '..'), 'clone', '-q', remote, other);
    git(other, 'commit', '-q', '--allow-empty', '-m', 'feat: something else');
    git(other, 'push', '-q', 'origin', 'main');
    expect(deploy(['staging', 'v1.4.0']).status).toBe(0);
    expect(parse(show('argocd/values/staging.yaml')).image.tag).toBe('v1.4.0');
    expect(git(remote, 'log', '--format=%s', 'main')).toBe(
      'chore(deploy): staging image.tag v1.4.0\nfeat: something else\ninitial',
    );
  });

  it('retries a rejected push, and gives up after three', () => {
    const { deploy, show, remote } = setup();
    // The server refuses the first push (as when main moved between fetch and push).
    const hook = join(remote, 'hooks', 'pre-receive');
    const marker = join(remote, 'rejected-once');
    writeFileSync(hook, `#!/bin/sh\n[ -e ${marker} ] && exit 0\ntouch ${marker}\necho busy >&2\nexit 1\n`, {
      mode: 0o755,
    });
    const res = deploy(['dev', 'f00ba47']);
    expect(res.stderr).toMatch(/deploy: push rejected \(attempt 1 of 3\), retrying on the new main/);
    expect(res.status).toBe(0);
    expect(parse(show('argocd/values/dev.yaml')).image.tag).toBe('f00ba47');
    writeFileSync(hook, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const never = deploy(['dev', 'f00ba48']);
    expect(never.status).toBe(1);
    expect(never.stderr).toMatch(/attempt 3 of 3[\s\S]*deploy: gave up after 3 attempts/);
  });

  it('refuses an unknown environment, a missing token and missing arguments, clearly', () => {
    const { deploy, env } = setup();
    const unknown = deploy(['qa', 'v1']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/deploy: no argocd\/values\/qa.yaml \(environments: dev prod staging\)/);
    const { GITOPS_TOKEN: _, ...noToken } = env;
    const token = deploy(['dev', 'v1'], noToken);
    expect(token.status).toBe(1);
    expect(token.stderr).toMatch(/deploy: GITOPS_TOKEN is not set/);
    const usage = deploy(['dev']);
    expect(usage.status).not.toBe(0);
    expect(usage.stderr).toMatch(/usage: hack\/ci\/deploy.sh <dev\|staging\|prod> <image tag>/);
    const badTag = deploy(['dev', 'v1 ; rm']);
    expect(badTag.status).toBe(1);
    expect(badTag.stderr).toMatch(/not a valid image tag/);
  });

  it('never puts the token in the remote URL or the output', () => {
    const { deploy, env, git, work } = setup();
    const res = deploy(['prod', 'v2.0.0']);
    expect(res.status).toBe(0);
    expect(res.stdout + res.stderr).not.toContain(env.GITOPS_TOKEN);
    expect(git(work, 'config', '--list')).not.toContain(env.GITOPS_TOKEN);
  });
});

describe('hack/ci/helm-package.sh', () => {
  it('packages the chart with version X.Y.Z and appVersion vX.Y.Z', () => {
    const out = mkdtempSync(join(tmpdir(), 'epreuve-pkg-'));
    const res = run(join(HACK_CI, 'helm-package.sh'), ['v1.4.0'], { HELM_PACKAGE_DIR: out });
    expect(res.status).toBe(0);
    expect(res.stdout.trim()).toBe(`${out}/epreuve-1.4.0.tgz`);
    const chart = execFileSync('tar', ['-xzOf', res.stdout.trim(), 'epreuve/Chart.yaml'], {
      encoding: 'utf8',
    });
    expect(parse(chart)).toMatchObject({ name: 'epreuve', version: '1.4.0', appVersion: 'v1.4.0' });
  });

  it('refuses a tag that is not a release, and a push without registry credentials', () => {
    const bad = run(join(HACK_CI, 'helm-package.sh'), ['main']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/helm-package: "main" is not a release tag \(vX.Y.Z\)/);
    const out = mkdtempSync(join(tmpdir(), 'epreuve-pkg-'));
    const push = run(join(HACK_CI, 'helm-package.sh'), ['v1.4.0', 'oci://registry.example.com/p/charts'], {
      HELM_PACKAGE_DIR: out,
    });
    expect(push.status).toBe(1);
    expect(push.stderr).toMatch(
      /helm-package: CI_REGISTRY is not set; cannot push to oci:\/\/registry.example.com/,
    );
  });
});

describe('hack/ci/build-image.sh (argument and environment checks; the build itself runs in CI)', () => {
  const script = join(HACK_CI, 'build-image.sh');
  const ci = {
    CI_REGISTRY: 'registry.example.com',
    CI_REGISTRY_IMAGE: 'registry.example.com/platform/epreuve',
    CI_REGISTRY_USER: 'gitlab-ci-token',
    CI_REGISTRY_PASSWORD: 'secret',
    CI_COMMIT_SHORT_SHA: 'abc1234',
  };

  it('refuses missing arguments, a bad name, a missing Dockerfile or stage, and a missing variable', () => {
    expect(run(script, []).stderr).toMatch(/usage: hack\/ci\/build-image.sh <name> \[Dockerfile\]/);
    const missing = run(script, ['api', 'nope/Dockerfile'], ci);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/build-image: no Dockerfile at nope\/Dockerfile/);
    const badName = run(script, ['api|.*'], ci);
    expect([badName.status, badName.stderr]).toEqual([1, 'build-image: "api|.*" is not an image name\n']);
    // Never the last stage under another image's name.
    const noStage = run(script, ['nope'], { ...ci, NODE_BASE_IMAGE: 'node:24-slim' });
    expect([noStage.status, noStage.stderr]).toEqual([
      1,
      'build-image: Dockerfile has no stage named nope\n',
    ]);
    const noBase = run(script, ['gateway'], ci);
    expect(noBase.status).toBe(1);
    expect(noBase.stderr).toMatch(/build-image: NODE_BASE_IMAGE is not set/);
  });

  it('builds each image of the matrix from its stage of the root Dockerfile', () => {
    const ci = parse(readFileSync(join(REPO_ROOT, '.gitlab-ci.yml'), 'utf8'));
    const stages = [
      ...readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').matchAll(/^FROM\s.*\sAS\s+(\S+)\s*$/gim),
    ].map((m) => m[1]);
    const images = (ci['build-image'].parallel.matrix as Array<{ IMAGE: string | string[] }>).flatMap(
      (e) => e.IMAGE,
    );
    expect(images).toContain('gateway');
    for (const image of images) expect(stages, image).toContain(image);
    expect(ci['build-image'].script).toEqual(['hack/ci/build-image.sh "$IMAGE"']);
  });
});
