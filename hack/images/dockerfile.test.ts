import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, readSources, readWorkspaces, resolveAll, runtimeClosure } from '../import-boundaries.ts';
import { imageTargets, lineage, parseDockerfile, readDockerfile, type Stage } from './dockerfile.ts';

/**
 * The root Dockerfile, checked without building it: each target holds the workspaces its
 * entrypoint reaches through its run-time imports (so it starts) and no other process's source, its own workspace's production dependencies, and runs as uid 1000; build.sh's cache
 * keys cover the same workspaces. (test/e2e/images.test.ts looks inside the built images.)
 */
const stages = readDockerfile(REPO_ROOT);
const targets = imageTargets(stages);
const workspaces = readWorkspaces();
const workspaceDirs = [...workspaces.values()].map((w) => w.dir);
const files = readSources();
const imports = resolveAll(files, workspaces);
const buildSh = readFileSync(join(REPO_ROOT, 'hack', 'images', 'build.sh'), 'utf8');
const topDir = (path: string) => path.split('/')[0]!;
// biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's ARG syntax, not a template
const NODE_BASE = '${NODE_IMAGE}';
/** Workspaces shared by processes (DESIGN.md); everything else with an entrypoint is a process. */
const LIBRARIES = ['crds', 'kube'];

/** What a target copies from the build context and from other stages, its whole lineage included. */
function contents(target: Stage) {
  const copies = lineage(stages, target.name).flatMap((s) => s.copies);
  const fromContext = copies.filter((c) => !c.from).flatMap((c) => c.sources);
  return {
    fromContext,
    fromStages: copies.filter((c) => c.from),
    workspaces: [...new Set(fromContext.map(topDir))].sort(),
  };
}

describe('the root Dockerfile', () => {
  it('has one target per image, and no per-workspace Dockerfiles beside it', () => {
    expect(targets.map((t) => t.name)).toEqual(['operator', 'api', 'gateway', 'data-api', 'seeder']);
    for (const dir of workspaceDirs)
      expect(() => readFileSync(join(REPO_ROOT, dir, 'Dockerfile')), `${dir}/Dockerfile`).toThrow(/ENOENT/);
  });

  it.each(targets.map((t) => [t.name, t] as const))(
    '%s holds exactly the workspaces its entrypoint imports, and its own dependencies',
    (_name, target) => {
      const [node, entry, ...rest] = target.entrypoint!;
      expect([node, rest]).toEqual(['node', []]);
      expect(files.has(entry!), `${entry} exists`).toBe(true);
      const reached = [...new Set([...runtimeClosure(entry!, imports, files)].map(topDir))].sort();
      const held = contents(target);
      // Everything the entrypoint reaches; beyond that only a shared library a sibling target of
      // the same stage needs (data-api shares its stage with the seeder, which reads crds).
      expect(held.workspaces, `workspaces copied into ${target.name}`).toEqual(
        expect.arrayContaining(reached),
      );
      expect(held.workspaces.filter((w) => !reached.includes(w) && !LIBRARIES.includes(w))).toEqual([]);
      // Each workspace as its package.json (the node_modules/@epreuve links resolve through it) and
      // its src: no tests (.dockerignore), no tooling, no READMEs.
      expect(held.fromContext.sort()).toEqual(
        held.workspaces.flatMap((w) => [`${w}/package.json`, `${w}/src`]).sort(),
      );
      expect(held.fromStages).toEqual([
        { from: 'deps', sources: [`/deps/${topDir(entry!)}/node_modules`], dest: 'node_modules' },
      ]);
      expect(
        lineage(stages, target.name)
          .map((s) => s.user)
          .filter(Boolean),
      ).toEqual(['1000:1000']);
      expect(lineage(stages, target.name)[0]!.base).toBe(NODE_BASE);
    },
  );

  it('no process image carries another process’s source', () => {
    const held = (name: string) => contents(targets.find((t) => t.name === name)!).workspaces;
    expect(held('api')).not.toContain('operator');
    expect(held('api')).not.toContain('gateway');
    expect(held('gateway')).toEqual(['crds', 'gateway', 'kube']);
    expect(held('operator')).toEqual(['crds', 'kube', 'operator']);
    expect(held('data-api')).toEqual(['crds', 'sandboxes']);
  });

  it('installs dependencies in one stage, from every workspace’s package.json, one tree per process', () => {
    const deps = stages.find((s) => s.name === 'deps')!;
    expect(deps.copies.flatMap((c) => c.sources).sort()).toEqual(
      ['package.json', 'package-lock.json', ...workspaceDirs.map((d) => `${d}/package.json`)].sort(),
    );
    expect(deps.runs).toHaveLength(1);
    const loop = /for workspace in ([^;]+);/.exec(deps.runs[0]!)?.[1]?.trim().split(/\s+/);
    const processes = [...new Set(targets.map((t) => topDir(t.entrypoint![1]!)))];
    expect(loop?.sort()).toEqual(processes.sort());
    expect(deps.runs[0]).toMatch(/npm ci --omit=dev --workspace="@epreuve\/\$workspace"/);
  });

  it('hack/images/build.sh builds every target, keyed on the workspaces that target copies', () => {
    const images = /^IMAGES=\(([^)]*)\)$/m.exec(buildSh)?.[1]?.split(/\s+/) ?? [];
    for (const t of targets) expect(images, t.name).toContain(t.name);
    const table = /^declare -A WORKSPACES=\(\n([\s\S]*?)\n\)$/m.exec(buildSh)?.[1] ?? '';
    const keyed = Object.fromEntries(
      [...table.matchAll(/\[([a-z-]+)\]="([^"]*)"/g)].map((m) => [m[1]!, m[2]!.split(' ').sort()]),
    );
    expect(keyed).toEqual(Object.fromEntries(targets.map((t) => [t.name, contents(t).workspaces])));
  });
});

describe('the Dockerfile reader', () => {
  it('reads stages, copies, continuation lines, entrypoints and users', () => {
    const parsed = parseDockerfile(
      [
        '# syntax=docker/dockerfile:1',
        'ARG NODE_IMAGE=node:24-slim',
        `FROM ${NODE_BASE} AS deps`,
        'COPY a/package.json \\',
        '     b/package.json ./',
        'RUN echo one \\',
        '  # a comment inside',
        ' && echo two',
        'FROM deps AS app',
        'COPY --from=deps --chown=1000 /x node_modules',
        'USER 1000:1000',
        'ENTRYPOINT ["node", "a/src/main.ts"]',
      ].join('\n'),
    );
    expect(parsed).toEqual([
      {
        name: 'deps',
        base: NODE_BASE,
        copies: [{ sources: ['a/package.json', 'b/package.json'], dest: './' }],
        runs: ['echo one && echo two'],
      },
      {
        name: 'app',
        base: 'deps',
        copies: [{ from: 'deps', sources: ['/x'], dest: 'node_modules' }],
        runs: [],
        user: '1000:1000',
        entrypoint: ['node', 'a/src/main.ts'],
      },
    ]);
    expect(imageTargets(parsed).map((s) => s.name)).toEqual(['app']);
  });
});
