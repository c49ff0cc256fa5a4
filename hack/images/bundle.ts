/**
 * Compiles each image's entrypoint into one ESM file (the root Dockerfile's `build` stage), so no
 * process in an image loads node's TypeScript type stripper (amaro's WebAssembly: ~17 MB RSS, and
 * every module stripped at each start) nor resolves a tree of workspace modules when it starts.
 *
 *   node hack/images/bundle.ts <outDir> <workspace>/src/<path>.ts…   → <outDir>/<workspace>/<path>.mjs
 *   node hack/images/bundle.ts --bundler-packages                     → the npm specs to install first
 *
 * Rolldown (vitest's bundler, pinned in the root package.json) rather than `tsc` emit: one file per
 * process, workspace packages (`@epreuve/*`) inlined through their `exports`, npm dependencies left
 * external (each image installs its own production tree in the `deps` stage). Type-only imports
 * are dropped exactly as node's type stripping drops them (`onlyRemoveTypeImports`, the
 * `verbatimModuleSyntax` the sources are checked with). Entry points used outside images (tests,
 * `make up`, benches) still run from their `.ts` sources.
 *
 * Sources that read files beside themselves at run time (the API's web pages and guides) do so
 * through `import.meta.dirname`: in the bundle it is rewritten to the module's own directory
 * relative to the bundle, and the image copies those files to the same paths as in the repository.
 * `import.meta.url` stays the URL of the file the module was bundled into (the dataset generator
 * hashes its own code through it); any other `import.meta` property fails the bundle.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Plugin } from 'rolldown';

const ENTRY = /^([a-z][a-z0-9-]*)\/src\/(.+)\.ts$/;

/** `api/src/main.ts` → `api/main.mjs`; `sandboxes/src/data-api/main.ts` → `sandboxes/data-api/main.mjs`. */
export function bundlePath(entry: string): string {
  const m = ENTRY.exec(entry);
  if (!m) throw new Error(`entry "${entry}": expected <workspace>/src/<path>.ts`);
  return `${m[1]}/${m[2]}.mjs`;
}

/** The inverse of bundlePath: the source an image's `node <bundle>` was built from. */
export function sourceOf(bundle: string): string {
  const m = /^([a-z][a-z0-9-]*)\/(.+)\.mjs$/.exec(bundle);
  if (!m) throw new Error(`bundle "${bundle}": expected <workspace>/<path>.mjs`);
  return `${m[1]}/src/${m[2]}.ts`;
}

/**
 * The packages to install before bundling, each at its lockfile version: rolldown and its
 * dependencies (its native binding comes pinned through its optionalDependencies). The build stage
 * installs these alone rather than `npm ci` of the whole development tree (~400 MB: vitest,
 * playwright, biome, TypeScript…) that a bundle does not need.
 */
export function bundlerPackages(lockfile: string): string[] {
  const packages = (JSON.parse(lockfile) as { packages?: Record<string, LockEntry> }).packages ?? {};
  const entry = (name: string, under = '') =>
    packages[`${under}node_modules/${name}`] ?? (under ? packages[`node_modules/${name}`] : undefined);
  const rolldown = entry('rolldown');
  if (!rolldown?.version) throw new Error('package-lock.json has no rolldown: npm install -D -E rolldown');
  return [
    `rolldown@${rolldown.version}`,
    ...Object.keys(rolldown.dependencies ?? {}).map((name) => {
      const dep = entry(name, 'node_modules/rolldown/');
      if (!dep?.version) throw new Error(`package-lock.json has no ${name} (a dependency of rolldown)`);
      return `${name}@${dep.version}`;
    }),
  ];
}
interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
}

/** `@epreuve/<workspace>[/<subpath>]` → the file its package.json `exports` names, under root. */
export function resolveWorkspace(root: string, specifier: string): string | undefined {
  const m = /^@epreuve\/([a-z][a-z0-9-]*)(\/.+)?$/.exec(specifier);
  if (!m) return undefined;
  const dir = join(root, m[1]!);
  let exportsField: Record<string, string> | string | undefined;
  try {
    exportsField = (
      JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports?: typeof exportsField }
    ).exports;
  } catch (err) {
    throw new Error(`${specifier}: cannot read ${m[1]}/package.json (${(err as Error).message})`);
  }
  const key = `.${m[2] ?? ''}`;
  const target =
    typeof exportsField === 'string' ? (key === '.' ? exportsField : undefined) : exportsField?.[key];
  if (typeof target !== 'string') throw new Error(`${specifier}: ${m[1]}/package.json exports no "${key}"`);
  return resolve(dir, target);
}

/** A module's `import.meta.dirname` as seen from the bundle: the same directory, relative to it. */
export function rewriteImportMeta(code: string, module: string, bundle: string): string {
  // import.meta.url stays: the file the module was bundled into (prebuilt.ts hashes that code).
  const other = /import\.meta(?!\.(?:dirname|url)\b)(?:\.\w+|\b)/.exec(code);
  if (other)
    throw new Error(
      `${module}: uses ${other[0]}, which a bundle would change; only import.meta.dirname is rewritten (hack/images/bundle.ts)`,
    );
  const rel = relative(dirname(bundle), dirname(module));
  if (rel === '') return code;
  return code.replaceAll('import.meta.dirname', `(import.meta.dirname + ${JSON.stringify(`/${rel}`)})`);
}

/**
 * Bundles entries (paths under root) into outDir; returns the bundles' paths. The entries of one
 * workspace are built together: what they share lands in one chunk (`<workspace>/chunks/`), so
 * `import.meta.url` of a shared module is the same file from every entry (datasets/prebuilt.ts
 * hashes it: the seeder's `prebuild` at image build and the data API at start must agree).
 */
export async function bundle(root: string, entries: string[], outDir: string): Promise<string[]> {
  const { build } = await import('rolldown');
  const byWorkspace = Map.groupBy(entries, (e) => bundlePath(e).split('/')[0]!);
  const out: string[] = [];
  for (const [workspace, group] of byWorkspace) {
    const plugin: Plugin = {
      name: 'epreuve-workspaces',
      resolveId: (source) => resolveWorkspace(root, source),
      transform(code, id) {
        // The workspaces' sources only (not rolldown's own runtime module, which is not a file).
        if (!id.startsWith(`${root}/`) || id.includes('/node_modules/')) return null;
        const module = relative(root, id);
        // A module's final file is known only after chunking; with one entry it is that entry's.
        if (group.length > 1 && code.includes('import.meta.dirname'))
          throw new Error(`${module}: uses import.meta.dirname in a workspace bundled with several entries`);
        // Paths as in the repository (api/src/guides/index.ts and api/main.mjs): the image copies
        // the files a module reads beside itself to the same relative place.
        return { code: rewriteImportMeta(code, module, bundlePath(group[0]!)) };
      },
    };
    await build({
      input: Object.fromEntries(
        group.map((e) => [bundlePath(e).slice(workspace.length + 1, -'.mjs'.length), resolve(root, e)]),
      ),
      platform: 'node',
      tsconfig: false,
      transform: { typescript: { onlyRemoveTypeImports: true } },
      // Everything but the workspaces' own sources: relative paths, absolute ones and @epreuve/*.
      external: (id) => !/^(?:\.{0,2}\/|@epreuve\/|\0)/.test(id),
      plugins: [plugin],
      logLevel: 'warn',
      // A warning is a bundle that may not behave as the sources do (eval, a missing export…).
      onLog(level, log) {
        throw new Error(`${group.join(', ')}: rolldown ${level}: ${log.message}`);
      },
      output: {
        dir: join(outDir, workspace),
        format: 'esm',
        entryFileNames: '[name].mjs',
        chunkFileNames: 'chunks/[name]-[hash].mjs',
      },
      write: true,
    });
    out.push(...group.map((e) => join(outDir, bundlePath(e))));
  }
  return out;
}

if (import.meta.main) {
  const [first, ...rest] = process.argv.slice(2);
  const root = resolve(import.meta.dirname, '..', '..');
  if (first === '--bundler-packages') {
    console.log(bundlerPackages(readFileSync(join(root, 'package-lock.json'), 'utf8')).join(' '));
  } else if (!first || rest.length === 0) {
    console.error(
      'usage: node hack/images/bundle.ts <outDir> <workspace>/src/<path>.ts… | --bundler-packages',
    );
    process.exit(2);
  } else {
    const start = performance.now();
    const out = await bundle(root, rest, resolve(first));
    const took = Math.round(performance.now() - start);
    console.error(`bundle: ${out.map((f) => relative(process.cwd(), f)).join(', ')} (${took} ms)`);
  }
}
