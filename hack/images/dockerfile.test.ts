import { readdirSync, readFileSync } from 'node:fs';
import { join, matchesGlob } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, readSources, readWorkspaces, resolveAll, runtimeClosure } from '../import-boundaries.ts';
import { bundlePath, sourceOf } from './bundle.ts';
import { imageTargets, lineage, parseDockerfile, readDockerfile, type Stage } from './dockerfile.ts';

/**
 * The root Dockerfile, checked without building it: each target runs the bundle of its
 * entrypoint (compiled JavaScript, hack/images/bundle.ts) with its own workspace's production
 * dependencies and the data files the workspaces it imports read at run time, and nothing else
 * from the repository (no TypeScript, so no other process's source); it runs as uid 1000; build.sh's
 * cache keys cover the workspaces the bundle compiles. (test/e2e/images.test.ts looks inside the
 * built images and starts them.)
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
const build = stages.find((s) => s.name === 'build')!;
/** The entries the build stage bundles (`node hack/images/bundle.ts dist <entry>…`). */
const bundled = build.runs
  .map((r) => /^node hack\/images\/bundle\.ts dist (.+)$/.exec(r)?.[1])
  .find(Boolean)
  ?.split(/\s+/);

/** The bundle a target runs: `node [flags…] <bundle>`, the first argument that is no flag. */
const bundleOf = (target: Stage) => target.entrypoint!.slice(1).find((a) => !a.startsWith('-'))!;
/** The TypeScript source a target's `node <bundle>` was built from. */
const sourceEntry = (target: Stage) => sourceOf(bundleOf(target));
/** The workspaces a target's entrypoint reaches through its run-time imports: what its bundle holds. */
const reached = (target: Stage) =>
  [...new Set([...runtimeClosure(sourceEntry(target), imports, files)].map(topDir))].sort();
/** The files under a workspace's src that are not code nor documentation: read at run time. */
const dataFiles = (workspace: string) =>
  readdirSync(join(REPO_ROOT, workspace, 'src'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !/\.(ts|md)$/.test(e.name))
    .map((e) => `${join(e.parentPath, e.name).slice(REPO_ROOT.length + 1)}`)
    .sort();
/** What a target copies from the build context and from other stages, its whole lineage included. */
function contents(target: Stage) {
  const copies = lineage(stages, target.name).flatMap((s) => s.copies);
  return {
    fromContext: copies.filter((c) => !c.from),
    fromStages: copies.filter((c) => c.from),
  };
}
const copiedBy = (source: string, file: string) =>
  file === source || file.startsWith(`${source}/`) || matchesGlob(file, source);

describe('the root Dockerfile', () => {
  it('has one target per image, and no per-workspace Dockerfiles beside it', () => {
    expect(targets.map((t) => t.name)).toEqual(['operator', 'api', 'gateway', 'data-api', 'seeder']);
    for (const dir of workspaceDirs)
      expect(() => readFileSync(join(REPO_ROOT, dir, 'Dockerfile')), `${dir}/Dockerfile`).toThrow(/ENOENT/);
  });

  it('bundles every target’s entrypoint in one build stage, from every workspace’s package.json and sources', () => {
    expect(bundled?.sort()).toEqual(targets.map(sourceEntry).sort());
    expect(build.copies.filter((c) => !c.from).flatMap((c) => c.sources)).toEqual([
      'package-lock.json',
      'hack/images/bundle.ts',
      ...workspaceDirs.flatMap((d) => [`${d}/package.json`, `${d}/src`]),
    ]);
    // The bundler alone, at its lockfile versions, before the sources (a source change reuses it).
    expect(build.runs[0]).toMatch(
      /^npm install --no-save .*\$\(node hack\/images\/bundle\.ts --bundler-packages\)/,
    );
    const dockerignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(dockerignore.indexOf('!hack/images/bundle.ts')).toBeGreaterThan(dockerignore.indexOf('hack'));
  });

  it.each(targets.map((t) => [t.name, t] as const))(
    '%s runs its bundle, with its own dependencies and the data files it reads, nothing else',
    (_name, target) => {
      const [node, ...args] = target.entrypoint!;
      const bundle = bundleOf(target);
      // Node's own flags may come before the bundle (the operator's V8 flags), nothing after it.
      expect([node, args.slice(args.indexOf(bundle) + 1)]).toEqual(['node', []]);
      expect(files.has(sourceOf(bundle!)), `${sourceOf(bundle!)} exists`).toBe(true);
      expect(bundlePath(sourceOf(bundle!))).toBe(bundle);
      const process = topDir(bundle!);
      const held = contents(target);
      expect(held.fromStages).toEqual([
        { from: 'deps', sources: [`/deps/${process}/node_modules`], dest: 'node_modules' },
        { from: 'build', sources: [`/build/dist/${process}`], dest: process },
      ]);
      // From the repository only data files, at their own paths (where the bundle's rewritten
      // import.meta.dirname looks for them): every one of the reached workspaces', no source.
      for (const copy of held.fromContext) {
        expect(copy.sources, 'one source per COPY').toHaveLength(1);
        const [source] = copy.sources;
        const dir = source!.includes('*') ? source!.slice(0, source!.lastIndexOf('/')) : source;
        expect(copy.dest.replace(/\/$/, ''), `${source} is copied to its own path`).toBe(dir);
        const matched = reached(target)
          .flatMap(dataFiles)
          .filter((f) => copiedBy(source!, f));
        expect(
          matched.length,
          `${source} copies data files of ${reached(target).join(', ')}`,
        ).toBeGreaterThan(0);
        const code = [...files.keys()].filter((f) => f.endsWith('.ts') && copiedBy(source!, f));
        expect(code, `${source} copies TypeScript into ${target.name}`).toEqual([]);
      }
      for (const file of reached(target).flatMap(dataFiles))
        expect(
          held.fromContext.some((c) => copiedBy(c.sources[0]!, file)),
          `${file} (read at run time) is copied into ${target.name}`,
        ).toBe(true);
      // Each stage's last USER (a stage may be root for a build step: the sandboxes' prebuilt tables).
      const users = lineage(stages, target.name)
        .map((s) => s.user)
        .filter(Boolean);
      expect(users.length).toBeGreaterThan(0);
      expect(new Set(users)).toEqual(new Set(['1000:1000']));
      expect(lineage(stages, target.name)[0]!.base).toBe(NODE_BASE);
    },
  );

  it('no process image carries another process’s code: each bundle reaches its own workspace and the libraries', () => {
    const of = (name: string) => reached(targets.find((t) => t.name === name)!);
    expect(of('operator')).toEqual(['crds', 'kube', 'operator']);
    expect(of('api')).toEqual(['api', 'crds', 'kube', 'sandboxes']);
    expect(of('gateway')).toEqual(['crds', 'gateway', 'kube']);
    expect(of('data-api')).toEqual(['crds', 'sandboxes']);
    expect(of('seeder')).toEqual(['crds', 'sandboxes']);
  });

  it('installs dependencies in one stage, from every workspace’s package.json, one tree per process', () => {
    const deps = stages.find((s) => s.name === 'deps')!;
    expect(deps.copies.flatMap((c) => c.sources).sort()).toEqual(
      ['package.json', 'package-lock.json', ...workspaceDirs.map((d) => `${d}/package.json`)].sort(),
    );
    expect(deps.runs).toHaveLength(1);
    const loop = /for workspace in ([^;]+);/.exec(deps.runs[0]!)?.[1]?.trim().split(/\s+/);
    const processes = [...new Set(targets.map((t) => topDir(bundleOf(t))))];
    expect(loop?.sort()).toEqual(processes.sort());
    expect(deps.runs[0]).toMatch(/npm ci --omit=dev --workspace="@epreuve\/\$workspace"/);
    // The workspaces are in the bundles: npm's links to them would dangle.
    expect(deps.runs[0]).toMatch(/rm -rf node_modules\/@epreuve;/);
  });

  it('hack/images/build.sh builds every target, keyed on the workspaces its bundle compiles and on the bundler', () => {
    const images = /^IMAGES=\(([^)]*)\)$/m.exec(buildSh)?.[1]?.split(/\s+/) ?? [];
    for (const t of targets) expect(images, t.name).toContain(t.name);
    const table = /^declare -A WORKSPACES=\(\n([\s\S]*?)\n\)$/m.exec(buildSh)?.[1] ?? '';
    const keyed = Object.fromEntries(
      [...table.matchAll(/\[([a-z-]+)\]="([^"]*)"/g)].map((m) => [m[1]!, m[2]!.split(' ').sort()]),
    );
    expect(keyed).toEqual(Object.fromEntries(targets.map((t) => [t.name, reached(t)])));
    expect(/^deps_key=.*$/m.exec(buildSh)?.[0]).toContain('hack/images/bundle.ts');
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
