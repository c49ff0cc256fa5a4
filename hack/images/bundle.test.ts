import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../import-boundaries.ts';
import {
  bundle,
  bundlePath,
  bundlerPackages,
  resolveWorkspace,
  rewriteImportMeta,
  sourceOf,
} from './bundle.ts';

const tmp = mkdtempSync(join(tmpdir(), 'epreuve-bundle-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A small repository: a workspace package with two exports and an app that imports them. */
function fixture(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmp, 'repo-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  // npm dependencies stay external: at run time they resolve from here, as /app/node_modules in an image.
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  return root;
}

describe('bundle paths', () => {
  it('maps <workspace>/src/<path>.ts to <workspace>/<path>.mjs and back', () => {
    expect(bundlePath('api/src/main.ts')).toBe('api/main.mjs');
    expect(bundlePath('sandboxes/src/data-api/main.ts')).toBe('sandboxes/data-api/main.mjs');
    expect(sourceOf('sandboxes/data-api/main.mjs')).toBe('sandboxes/src/data-api/main.ts');
    expect(sourceOf('operator/main.mjs')).toBe('operator/src/main.ts');
  });

  it('refuses an entry outside a workspace’s src, and a bundle that is not .mjs', () => {
    expect(() => bundlePath('test/bench/x.ts')).toThrow(
      'entry "test/bench/x.ts": expected <workspace>/src/<path>.ts',
    );
    expect(() => bundlePath('api/src/main.js')).toThrow(/expected <workspace>\/src\/<path>\.ts/);
    expect(() => sourceOf('operator/src/main.ts')).toThrow(
      'bundle "operator/src/main.ts": expected <workspace>/<path>.mjs',
    );
  });
});

describe('bundlerPackages', () => {
  it('pins rolldown at the root package.json’s version and its dependencies at the lockfile’s', () => {
    const lock = readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8');
    const { devDependencies: pinned } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const specs = bundlerPackages(lock);
    expect(specs[0]).toBe(`rolldown@${pinned.rolldown}`);
    const packages = (JSON.parse(lock) as { packages: Record<string, { version: string }> }).packages;
    for (const spec of specs.slice(1)) {
      const at = spec.lastIndexOf('@');
      expect(packages[`node_modules/${spec.slice(0, at)}`]?.version, spec).toBe(spec.slice(at + 1));
    }
    expect(specs.length).toBeGreaterThan(1);
  });

  it('prefers a copy nested under rolldown over the hoisted one', () => {
    const lock = JSON.stringify({
      packages: {
        'node_modules/rolldown': { version: '1.0.0', dependencies: { a: '^2' } },
        'node_modules/a': { version: '1.0.0' },
        'node_modules/rolldown/node_modules/a': { version: '2.1.0' },
      },
    });
    expect(bundlerPackages(lock)).toEqual(['rolldown@1.0.0', 'a@2.1.0']);
  });

  it('names what the lockfile lacks', () => {
    expect(() => bundlerPackages('{"packages":{}}')).toThrow('package-lock.json has no rolldown');
    const lock = JSON.stringify({
      packages: { 'node_modules/rolldown': { version: '1.0.0', dependencies: { b: '1' } } },
    });
    expect(() => bundlerPackages(lock)).toThrow('package-lock.json has no b (a dependency of rolldown)');
  });
});

describe('resolveWorkspace', () => {
  it('follows a workspace’s exports, subpaths included; leaves anything else to rolldown', () => {
    expect(resolveWorkspace(REPO_ROOT, '@epreuve/kube')).toBe(join(REPO_ROOT, 'kube/src/index.ts'));
    expect(resolveWorkspace(REPO_ROOT, '@epreuve/kube/telemetry')).toBe(
      join(REPO_ROOT, 'kube/src/telemetry.ts'),
    );
    expect(resolveWorkspace(REPO_ROOT, '@epreuve/sandboxes/grader')).toBe(
      join(REPO_ROOT, 'sandboxes/src/grader/index.ts'),
    );
    expect(resolveWorkspace(REPO_ROOT, './x.ts')).toBeUndefined();
    expect(resolveWorkspace(REPO_ROOT, 'pino')).toBeUndefined();
  });

  it('names a subpath the workspace does not export, and a workspace that is not there', () => {
    expect(() => resolveWorkspace(REPO_ROOT, '@epreuve/kube/src/client.ts')).toThrow(
      '@epreuve/kube/src/client.ts: kube/package.json exports no "./src/client.ts"',
    );
    expect(() => resolveWorkspace(REPO_ROOT, '@epreuve/nope')).toThrow(
      /^@epreuve\/nope: cannot read nope\/package\.json/,
    );
    const root = fixture({ 'w/package.json': '{"exports":"./src/i.ts"}' });
    expect(resolveWorkspace(root, '@epreuve/w')).toBe(join(root, 'w/src/i.ts'));
    expect(() => resolveWorkspace(root, '@epreuve/w/x')).toThrow(
      '@epreuve/w/x: w/package.json exports no "./x"',
    );
  });
});

describe('rewriteImportMeta', () => {
  it('points import.meta.dirname at the module’s own directory, relative to the bundle', () => {
    const code = "const d = import.meta.dirname;\nconst e = join(import.meta.dirname, '..');";
    expect(rewriteImportMeta(code, 'api/src/guides/index.ts', 'api/main.mjs')).toBe(
      'const d = (import.meta.dirname + "/src/guides");\nconst e = join((import.meta.dirname + "/src/guides"), \'..\');',
    );
    expect(rewriteImportMeta(code, 'sandboxes/src/x/y.ts', 'sandboxes/data-api/main.mjs')).toContain(
      '(import.meta.dirname + "/../src/x")',
    );
    // A module beside its bundle keeps it as it is.
    expect(rewriteImportMeta(code, 'api/a.ts', 'api/main.mjs')).toBe(code);
    // import.meta.url stays: the file the module is bundled into.
    expect(rewriteImportMeta('f(import.meta.url);', 'api/src/a.ts', 'api/main.mjs')).toBe(
      'f(import.meta.url);',
    );
  });

  it('refuses any other import.meta use, naming the module', () => {
    for (const use of ['import.meta.filename', 'import.meta.resolve("x")', 'f(import.meta)'])
      expect(() => rewriteImportMeta(`${use};`, 'api/src/a.ts', 'api/main.mjs'), use).toThrow(
        /^api\/src\/a\.ts: uses import\.meta(\.\w+)?, which a bundle would change/,
      );
  });
});

describe('bundle', () => {
  it('compiles an entry with its workspace imports into one file that runs, npm dependencies external', async () => {
    const root = fixture({
      'lib/package.json': JSON.stringify({ exports: { '.': './src/index.ts', './extra': './src/extra.ts' } }),
      'lib/src/index.ts': "export const greet = (who: string): string => ['hello', who].join(' ');\n",
      'lib/src/extra.ts': 'export interface Shape { n: number }\nexport const n = 2;\n',
      'app/src/main.ts': [
        "import { stringify } from 'yaml';",
        "import { greet } from '@epreuve/lib';",
        "import { n, type Shape } from '@epreuve/lib/extra';",
        "import { data } from './files/read.ts';",
        'class Box { value: number; constructor(v: number) { this.value = v; } }',
        'const shape: Shape = { n };',
        "console.log(stringify({ text: greet('bundle'), data: data(), n: shape.n, own: Object.keys(new Box(1)) }).trim());",
      ].join('\n'),
      'app/src/files/read.ts': [
        "import { readFileSync } from 'node:fs';",
        "import { join } from 'node:path';",
        "export const data = () => readFileSync(join(import.meta.dirname, 'data.txt'), 'utf8').trim();",
      ].join('\n'),
    });
    const [out] = await bundle(root, ['app/src/main.ts'], join(root, 'dist'));
    expect(out).toBe(join(root, 'dist/app/main.mjs'));
    const code = readFileSync(out!, 'utf8');
    expect(code).toContain('from "yaml"');
    expect(code).not.toMatch(/@epreuve\/|\.ts["']|: string|interface Shape/);
    // The data file at its repository path under the bundle's directory, as the api image copies it.
    mkdirSync(join(root, 'dist/app/src/files'), { recursive: true });
    writeFileSync(join(root, 'dist/app/src/files/data.txt'), 'beside\n');
    // No --experimental-strip-types needed nor used: the bundle is plain JavaScript.
    const stdout = execFileSync(process.execPath, ['--no-experimental-strip-types', out!], {
      encoding: 'utf8',
    });
    expect(stdout.trim().split('\n')).toEqual([
      'text: hello bundle',
      'data: beside',
      'n: 2',
      'own:',
      '  - value',
    ]);
  });

  it('fails on a rolldown warning, naming the entry', async () => {
    const root = fixture({ 'app/src/main.ts': "console.log(eval('1 + 1'));\n" });
    await expect(bundle(root, ['app/src/main.ts'], join(root, 'dist'))).rejects.toThrow(
      /app\/src\/main\.ts: rolldown warn: .*\[EVAL\].*Use of direct `eval`/,
    );
  });

  it('fails on a module that reads import.meta.filename', async () => {
    const root = fixture({ 'app/src/main.ts': 'console.log(import.meta.filename);\n' });
    await expect(bundle(root, ['app/src/main.ts'], join(root, 'dist'))).rejects.toThrow(
      /app\/src\/main\.ts: uses import\.meta\.filename/,
    );
  });

  it('builds a workspace’s entries together: a shared module is one file, the same import.meta.url from each', async () => {
    const root = fixture({
      'app/src/shared.ts': 'export const SOURCE_URL = import.meta.url;\n',
      'app/src/one.ts': "import { SOURCE_URL } from './shared.ts';\nconsole.log(SOURCE_URL);\n",
      'app/src/two/main.ts': "import { SOURCE_URL } from '../shared.ts';\nconsole.log(SOURCE_URL);\n",
    });
    const out = await bundle(root, ['app/src/one.ts', 'app/src/two/main.ts'], join(root, 'dist'));
    expect(out).toEqual([join(root, 'dist/app/one.mjs'), join(root, 'dist/app/two/main.mjs')]);
    const urls = out.map((f) => execFileSync(process.execPath, [f], { encoding: 'utf8' }).trim());
    expect(urls[0]).toMatch(/\/dist\/app\/chunks\/shared-[\w-]+\.mjs$/);
    expect(urls[1]).toBe(urls[0]);
  });

  it('refuses import.meta.dirname in a workspace bundled with several entries (its file is not known)', async () => {
    const root = fixture({
      'app/src/one.ts': 'console.log(import.meta.dirname);\n',
      'app/src/two.ts': 'console.log(2);\n',
    });
    await expect(bundle(root, ['app/src/one.ts', 'app/src/two.ts'], join(root, 'dist'))).rejects.toThrow(
      'app/src/one.ts: uses import.meta.dirname in a workspace bundled with several entries',
    );
  });

  it('the command line: usage on missing arguments (exit 2), the install specs on --bundler-packages', () => {
    const cli = join(REPO_ROOT, 'hack/images/bundle.ts');
    const usage = spawnSync(process.execPath, [cli, 'dist'], { encoding: 'utf8' });
    expect([usage.status, usage.stderr.trim()]).toEqual([
      2,
      'usage: node hack/images/bundle.ts <outDir> <workspace>/src/<path>.ts… | --bundler-packages',
    ]);
    const specs = execFileSync(process.execPath, [cli, '--bundler-packages'], { encoding: 'utf8' });
    expect(specs.trim().split(' ')).toEqual(
      bundlerPackages(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')),
    );
  });
});
