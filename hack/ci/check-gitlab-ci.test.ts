import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  checkPipeline,
  imageProblem,
  makeTargets,
  makeTargetsUsed,
  REPO_ROOT,
  scriptPaths,
} from './check-gitlab-ci.ts';

const CI_FILE = join(REPO_ROOT, '.gitlab-ci.yml');
const real = readFileSync(CI_FILE, 'utf8');

/** A small, valid pipeline to break one thing at a time. */
const MAKEFILE = 'SHELL := bash\n.PHONY: lint test\nlint: deps ## lint\n\tbiome ci .\ntest: lint\n\tvitest\n';
const base = (extra = '') =>
  [
    'stages: [lint, test]',
    'variables:',
    '  GO_IMAGE: golang:1.26.8-bookworm',
    '.tpl:',
    '  image: $GO_IMAGE',
    'lint:',
    '  stage: lint',
    '  extends: .tpl',
    '  script:',
    '    - make lint',
    '    - node hack/ci/chart-lint.ts',
    'test:',
    '  stage: test',
    '  extends: .tpl',
    '  needs: [lint]',
    '  script: [make test, ./hack/build-go-tool.sh helm]',
    extra,
  ].join('\n');
const check = (text: string) => checkPipeline(text, { makefile: MAKEFILE });

describe('.gitlab-ci.yml', () => {
  it('parses, and every stage, job reference, script, make target and image checks out', () => {
    expect(checkPipeline(real)).toEqual([]);
  });

  it('has the seven stages in order and the jobs the pipeline promises', () => {
    const ci = parse(real);
    expect(ci.stages).toEqual(['lint', 'test', 'build', 'scan', 'e2e', 'package', 'deploy']);
    const jobs = Object.keys(ci).filter((k) => ci[k]?.stage);
    for (const job of [
      'lint',
      'chart-lint',
      'conventional-commits',
      'test',
      'build-image',
      'trivy-fs',
      'trivy-config',
      'trivy-image',
      'e2e',
      'helm-package',
      'deploy-dev',
      'deploy-staging',
      'deploy-prod',
    ])
      expect(jobs.includes(job) || ci[job]?.extends, job).toBeTruthy();
    // Merge requests only for the commit check; prod is a manual step on tags.
    expect(ci['conventional-commits'].rules).toEqual([
      { if: '$CI_PIPELINE_SOURCE == "merge_request_event"' },
    ]);
    expect(ci['deploy-prod'].rules).toEqual([{ if: '$CI_COMMIT_TAG', when: 'manual' }]);
    // Every image of the root Dockerfile is built and scanned.
    const images = ['operator', 'api', 'gateway', 'data-api', 'seeder'];
    expect(ci['build-image'].parallel.matrix).toEqual([{ IMAGE: images }]);
    expect(ci['build-image'].script).toEqual(['hack/ci/build-image.sh "$IMAGE"']);
    expect(ci['trivy-image'].parallel.matrix).toEqual([{ IMAGE: images }]);
  });

  it('passes on a consistent pipeline (the fixture the negative tests break)', () => {
    expect(check(base())).toEqual([]);
  });

  it('catches a stage that is not declared', () => {
    expect(check(base('deploy:\n  stage: deploy\n  image: alpine:3.22\n  script: [echo]\n'))).toEqual([
      'deploy: stage "deploy" is not in stages (lint, test)',
    ]);
    // No stage means GitLab's default, "test"; it must be declared too.
    expect(check(base().replace('stages: [lint, test]', 'stages: [lint]'))).toContain(
      'test: stage "test" is not in stages (lint)',
    );
  });

  it('catches a script that does not exist', () => {
    expect(check(base().replace('hack/ci/chart-lint.ts', 'hack/ci/chart-lint-typo.ts'))).toEqual([
      'lint: script runs "hack/ci/chart-lint-typo.ts", which does not exist in the repository',
    ]);
    expect(
      check(base('other:\n  stage: lint\n  image: a:1\n  script: [bash ./ci/missing.sh --x]\n')),
    ).toEqual(['other: script runs "ci/missing.sh", which does not exist in the repository']);
  });

  it('catches a make target that does not exist', () => {
    expect(check(base().replace('make lint', 'make lint typecheck'))).toEqual([
      'lint: script runs "make typecheck", not a Makefile target',
    ]);
  });

  it('catches unpinned images, in jobs, services and *_IMAGE variables', () => {
    expect(check(base().replace('golang:1.26.8-bookworm', 'golang:latest'))).toEqual([
      'variables.GO_IMAGE: image "golang:latest" uses :latest (pin a version or a digest)',
      'lint: image "golang:latest" uses :latest (pin a version or a digest)',
      'test: image "golang:latest" uses :latest (pin a version or a digest)',
    ]);
    const noTag = check(
      base(
        'svc:\n  stage: test\n  image: { name: "registry.example.com:5000/team/tool" }\n  services: [postgres]\n  script: [echo]\n',
      ),
    );
    expect(noTag).toEqual([
      'svc: image "registry.example.com:5000/team/tool" has no tag (pin a version or a digest)',
      'svc services: image "postgres" has no tag (pin a version or a digest)',
    ]);
    expect(check(base().replace('image: $GO_IMAGE', 'image: $NOPE_IMAGE'))).toContain(
      'lint: image "$NOPE_IMAGE" uses a variable that is not defined',
    );
  });

  it('catches extends, needs and dependencies that name no job', () => {
    expect(check(base().replace('extends: .tpl\n  needs', 'extends: .tmpl\n  needs'))).toEqual(
      expect.arrayContaining(['test: extends ".tmpl", which is not defined']),
    );
    expect(check(base().replace('needs: [lint]', 'needs: [lnit]'))).toEqual([
      'test: needs "lnit", which is not a job',
    ]);
    expect(check(base().replace('needs: [lint]', 'dependencies: [.tpl]'))).toEqual([
      'test: dependencies names ".tpl", which is not a job',
    ]);
  });

  it('reports YAML that does not parse, and a job without a script', () => {
    expect(check('stages: [a]\njob:\n  script: [a: b: c]\n')[0]).toMatch(/^not valid YAML: /);
    expect(check(base('empty:\n  stage: lint\n  image: a:1\n'))).toEqual(['empty: has no script']);
    expect(check('')).toEqual(['empty pipeline']);
    expect(check('job:\n  image: a:1\n  script: [echo]\n')).toEqual([
      'no `stages` declared',
      'job: stage "test" is not in stages ()',
    ]);
  });

  it('catches a build or scan matrix that leaves out a Dockerfile target, or names one that is gone', () => {
    const dockerfile = [
      'FROM node:24-slim AS deps',
      'FROM deps AS operator',
      'ENTRYPOINT ["node", "operator/src/main.ts"]',
      'FROM deps AS gateway',
      'ENTRYPOINT ["node", "gateway/src/main.ts"]',
    ].join('\n');
    const job = (images: string) =>
      base(
        `build:\n  stage: test\n  image: a:1\n  parallel:\n    matrix:\n${images}\n  script: [echo "$IMAGE"]\n`,
      );
    const withDockerfile = (text: string) => checkPipeline(text, { makefile: MAKEFILE, dockerfile });
    expect(withDockerfile(job('      - IMAGE: [operator, gateway]'))).toEqual([]);
    // Split over matrix entries is the same list.
    expect(withDockerfile(job('      - IMAGE: operator\n      - IMAGE: gateway'))).toEqual([]);
    expect(withDockerfile(job('      - IMAGE: [operator]'))).toEqual([
      'build: matrix leaves out image "gateway" (a Dockerfile target)',
    ]);
    expect(withDockerfile(job('      - IMAGE: [operator, gateway, api]'))).toEqual([
      'build: matrix names image "api", which is not a Dockerfile target',
    ]);
    // A matrix over something else is not about images.
    expect(withDockerfile(job('      - SHARD: [1, 2]'))).toEqual([]);
  });

  it('reports an extends cycle instead of looping', () => {
    const cyclic = base('.a:\n  extends: .b\n.b:\n  extends: .a\n');
    expect(check(cyclic).some((p) => /extends itself \(\.a → \.b → \.a\)/.test(p))).toBe(true);
  });

  it('as a command: exit 0 on the real file, exit 1 listing problems on a broken one', () => {
    const script = join(REPO_ROOT, 'hack', 'ci', 'check-gitlab-ci.ts');
    const ok = spawnSync(process.execPath, [script], { encoding: 'utf8', cwd: REPO_ROOT });
    expect(ok.stdout).toMatch(/check out/);
    expect(ok.status).toBe(0);
    const broken = join(mkdtempSync(join(tmpdir(), 'epreuve-ci-')), 'ci.yml');
    writeFileSync(broken, real.replace('make test', 'make tset'));
    const bad = spawnSync(process.execPath, [script, broken], { encoding: 'utf8', cwd: REPO_ROOT });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('test: script runs "make tset", not a Makefile target');
  });
});

describe('the checker’s parsers', () => {
  it('reads Makefile targets, not variable assignments', () => {
    const t = makeTargets(readFileSync(join(REPO_ROOT, 'Makefile'), 'utf8'));
    expect([...t]).toEqual(expect.arrayContaining(['help', 'test', 'lint', 'typecheck', 'ci-lint']));
    expect(t.has('SHELL')).toBe(false);
    expect(t.has('REPORT')).toBe(false);
  });

  it('finds repository scripts and make targets in shell lines', () => {
    expect(scriptPaths('node hack/ci/x.ts "$A" && ./run.sh; bash -e tools/y.sh')).toEqual(
      expect.arrayContaining(['hack/ci/x.ts', 'run.sh', 'tools/y.sh']),
    );
    expect(scriptPaths('node -e "1" && echo $HOME/x && curl https://x/hack/y')).toEqual([]);
    expect(makeTargetsUsed('make -j2 lint typecheck V=1 && make test')).toEqual([
      'lint',
      'typecheck',
      'test',
    ]);
  });

  it('tells pinned images from unpinned ones', () => {
    expect(imageProblem('golang:1.26.8-bookworm')).toBeNull();
    expect(imageProblem(`alpine@sha256:${'a'.repeat(64)}`)).toBeNull();
    expect(imageProblem('quay.io/buildah/stable:v1.41.5')).toBeNull();
    expect(imageProblem('quay.io/buildah/stable')).toMatch(/no tag/);
    expect(imageProblem('node:latest')).toMatch(/:latest/);
    expect(imageProblem('quay.io/buildah/stable:stable')).toMatch(/names no version/);
  });
});
