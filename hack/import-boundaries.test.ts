import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type BoundaryRule,
  check,
  describeViolation,
  importsOf,
  REPO_ROOT,
  RULES,
  readSources,
  readWorkspaces,
  resolveAll,
  resolveImport,
  runtimeClosure,
  violationKey,
} from './import-boundaries.ts';

const files = readSources();
const workspaces = readWorkspaces();
const imports = resolveAll(files, workspaces);
/** Package names built from parts, so this file itself holds no import of them, even as text. */
const pkg = (name: string) => ['@epreuve', name].join('/');

describe('the repository keeps its import boundaries (DESIGN.md: no process imports another)', () => {
  const results = check(imports);
  it.each(
    results.map((result) => {
      const known = result.rule.knownViolations;
      const title = known
        ? `PENDING — ${result.rule.name}: ${known.imports.length} known violation(s) allowed until ${known.until} (RULES in hack/import-boundaries.ts)`
        : result.rule.name;
      return [title, result] as const;
    }),
  )('%s', (_title, { rule, unexpected, fixed }) => {
    expect(unexpected.map(describeViolation), rule.why).toEqual([]);
    expect(fixed, `${rule.name}: these are gone — remove them from knownViolations`).toEqual([]);
  });

  it('reads a real share of the repository (so an empty scan cannot pass)', () => {
    expect(files.size).toBeGreaterThan(150);
    for (const dir of ['crds', 'kube', 'operator', 'api', 'gateway', 'sandboxes', 'hack', 'test'])
      expect(
        [...files.keys()].some((f) => f.startsWith(`${dir}/`)),
        dir,
      ).toBe(true);
    expect(imports.filter((i) => i.target?.startsWith('crds/')).length).toBeGreaterThan(20);
    // kube's imports of crds exist and are all type-only (the rule has something to check).
    const kubeToCrds = imports.filter((i) => i.file.startsWith('kube/') && i.target?.startsWith('crds/'));
    expect(kubeToCrds.length).toBeGreaterThan(0);
    expect(kubeToCrds.every((i) => i.typeOnly)).toBe(true);
  });

  it(`grep -rn "${pkg('operator')}" api hack gateway finds nothing`, () => {
    const grep = spawnSync(
      'grep',
      ['-rn', '--exclude-dir=node_modules', pkg('operator'), 'api', 'hack', 'gateway'],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
      },
    );
    expect(grep.stdout).toBe('');
    expect(grep.status, grep.stderr).toBe(1); // 1: no match; 2 would be an error (a missing directory)
  });

  it('each workspace declares exactly the workspaces its code imports; processes depend on libraries only', () => {
    const byDir = new Map([...workspaces].map(([name, w]) => [w.dir, name]));
    for (const [name, { dir }] of workspaces) {
      const manifest = JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8'));
      const declared = Object.keys(manifest.dependencies ?? {}).filter((d) => workspaces.has(d));
      const used = new Set(
        imports
          .filter((i) => i.file.startsWith(`${dir}/`) && !i.file.endsWith('.test.ts') && i.target)
          .map((i) => byDir.get(i.target!.split('/')[0]!))
          .filter((w): w is string => w !== undefined && w !== name),
      );
      expect(declared.sort(), `${dir}/package.json dependencies`).toEqual([...used].sort());
    }
    const gateway = JSON.parse(readFileSync(join(REPO_ROOT, 'gateway', 'package.json'), 'utf8'));
    expect(Object.keys(gateway.dependencies).filter((d) => d.startsWith('@epreuve/'))).toEqual([
      pkg('crds'),
      pkg('kube'),
    ]);
  });
});

describe('the import reader', () => {
  it('finds static, type-only, side-effect, dynamic, re-exported and required imports, on their lines', () => {
    const source = [
      "import { a, type B } from './a.ts';",
      "import type { C } from './c.ts';",
      "import type D from './d.ts';",
      "import type, { e } from './e.ts';", // a default import named "type": not type-only
      "import type from './type.ts';",
      "import './side-effect.ts';",
      'import {',
      '  f,',
      '  g,',
      "} from './multi-line.ts';",
      "export * from './star.ts';",
      "export type { H } from './h.ts';",
      "export { i as j } from './i.ts';",
      'export { k };',
      'const k = await import("./dynamic.ts");',
      "const l = require('./required.cjs');",
      "import m = require('./ts-require.ts');",
      'const url = import.meta.url;',
    ].join('\n');
    expect(importsOf(source).map((s) => [s.line, s.kind, s.specifier, s.typeOnly])).toEqual([
      [1, 'import', './a.ts', false],
      [2, 'import', './c.ts', true],
      [3, 'import', './d.ts', true],
      [4, 'import', './e.ts', false],
      [5, 'import', './type.ts', false],
      [6, 'import', './side-effect.ts', false],
      [7, 'import', './multi-line.ts', false],
      [11, 'export', './star.ts', false],
      [12, 'export', './h.ts', true],
      [13, 'export', './i.ts', false],
      [15, 'dynamic', './dynamic.ts', false],
      [16, 'require', './required.cjs', false],
      [17, 'require', './ts-require.ts', false],
    ]);
  });

  it('ignores import-looking text in strings, comments, templates and regular expressions', () => {
    const source = [
      "// import { x } from '../operator/src/main.ts';",
      "/* export * from '../api/src/app.ts'; */",
      'const s = "import { y } from \'../api/src/app.ts\'";',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text holding a template literal
      "const t = `import { z } from '../api/src/app.ts' ${await import('./real.ts')} import('../api/x.ts')`;",
      'const r = /import \'(x)\' from "y"/g.test(s) ? 1 / 2 : 3;',
      "const q = 'it\\'s import(\"../api/x.ts\")';",
      "import { after } from './after.ts';",
    ].join('\n');
    expect(importsOf(source).map((s) => [s.line, s.specifier])).toEqual([
      [4, './real.ts'],
      [7, './after.ts'],
    ]);
  });

  it('resolves relative paths and workspace packages (through their exports) to repository paths', () => {
    expect(resolveImport('gateway/src/main.ts', '../../api/src/app.ts', workspaces)).toBe('api/src/app.ts');
    expect(resolveImport('api/src/app.ts', pkg('crds'), workspaces)).toBe('crds/src/index.ts');
    expect(resolveImport('api/src/app.ts', `${pkg('sandboxes')}/grader`, workspaces)).toBe(
      'sandboxes/src/grader/index.ts',
    );
    // A process exports nothing: importing it still lands in its directory.
    expect(resolveImport('api/src/app.ts', pkg('gateway'), workspaces)).toBe('gateway/');
    expect(resolveImport('api/src/app.ts', 'fastify', workspaces)).toBeUndefined();
    expect(resolveImport('api/src/app.ts', 'node:fs', workspaces)).toBeUndefined();
  });
});

describe('the checker catches a violation (synthetic sources)', () => {
  const synthetic = (sources: Record<string, string>) =>
    check(resolveAll(new Map(Object.entries(sources)), workspaces))
      .flatMap(({ rule, unexpected }) => unexpected.map((i) => `${rule.name} | ${violationKey(i)}`))
      .sort();

  it('a process importing another, by path or by package, statically or dynamically', () => {
    expect(
      synthetic({
        'gateway/src/evil.ts': "import { buildApp } from '../../api/src/app.ts';\n",
        'gateway/src/lazy.ts': `const m = await import('${pkg('operator')}');\n`,
        'api/src/evil.ts': `export { SandboxGateway } from '${pkg('gateway')}';\n`,
        'operator/src/evil.ts': "import '../../api/src/main.ts';\n",
        'sandboxes/src/evil.ts': "import type { AssessmentObject } from '../../gateway/src/routes.ts';\n",
        'hack/evil.ts': "import { reconcile } from '../operator/src/assessment/reconciler.ts';\n",
        'kube/src/evil.ts': "import { buildApp } from '../../api/src/app.ts';\n",
        'crds/src/evil.ts': `import { KubeClient } from '${pkg('kube')}';\n`,
      }),
    ).toEqual(
      [
        'gateway ↛ api, operator | gateway/src/evil.ts → ../../api/src/app.ts',
        `gateway ↛ api, operator | gateway/src/lazy.ts → ${pkg('operator')}`,
        `api ↛ operator, gateway | api/src/evil.ts → ${pkg('gateway')}`,
        'operator ↛ api, gateway | operator/src/evil.ts → ../../api/src/main.ts',
        // Type-only is still a dependency between processes.
        'sandboxes ↛ api, operator, gateway | sandboxes/src/evil.ts → ../../gateway/src/routes.ts',
        'hack ↛ operator, api, gateway source | hack/evil.ts → ../operator/src/assessment/reconciler.ts',
        'kube ↛ processes, hack, test | kube/src/evil.ts → ../../api/src/app.ts',
        `crds ↛ any other workspace | crds/src/evil.ts → ${pkg('kube')}`,
      ].sort(),
    );
  });

  it('kube: types from crds pass, values (KINDS) and imports that load crds at run time do not', () => {
    expect(
      synthetic({
        'kube/src/types-ok.ts': `import type { ObjectMeta } from '${pkg('crds')}';\nexport type { Assessment } from '${pkg('crds')}';\n`,
        'kube/src/kinds.ts': `import { KINDS } from '${pkg('crds')}';\n`,
        // Inline `type` names still leave `import {} from` behind under verbatimModuleSyntax.
        'kube/src/inline.ts': `import { type ObjectMeta } from '../../crds/src/index.ts';\n`,
      }),
    ).toEqual([
      `kube imports only types from crds | kube/src/inline.ts → ../../crds/src/index.ts`,
      `kube imports only types from crds | kube/src/kinds.ts → ${pkg('crds')}`,
    ]);
  });

  it('api/src/services importing api/src/plugins is caught; routes may', () => {
    expect(
      synthetic({
        'api/src/services/assessments.ts': "import { Problem } from '../plugins/app/problem.ts';\n",
        'api/src/routes/ok.ts': "import { auth } from '../plugins/app/auth.ts';\n",
      }),
    ).toEqual([
      'api/src/services ↛ api/src/plugins | api/src/services/assessments.ts → ../plugins/app/problem.ts',
    ]);
  });

  it('a known violation that is gone fails the rule until the list is emptied', () => {
    const rule: BoundaryRule = {
      name: 'a ↛ b',
      from: ['api/src/a/'],
      to: ['api/src/b/'],
      why: 'test',
      knownViolations: {
        until: 'later',
        imports: ['api/src/a/x.ts → ../b/y.ts', 'api/src/a/z.ts → ../b/y.ts'],
      },
    };
    const [result] = check(resolveAll(new Map([['api/src/a/x.ts', "import '../b/y.ts';\n"]]), workspaces), [
      rule,
    ]);
    expect(result!.unexpected).toEqual([]);
    expect(result!.fixed).toEqual(['api/src/a/z.ts → ../b/y.ts']);
  });

  it('the run-time closure follows value imports and skips type-only ones', () => {
    const sources = new Map(
      Object.entries({
        'gateway/src/main.ts':
          "import { a } from './a.ts';\nimport type { T } from '../../api/src/types.ts';\n",
        'gateway/src/a.ts': `import { KINDS } from '${pkg('crds')}';\n`,
        'crds/src/index.ts': "export * from './names.ts';\n",
        'crds/src/names.ts': 'export const KINDS = {};\n',
        'api/src/types.ts': 'export type T = 1;\n',
      }),
    );
    expect(
      [...runtimeClosure('gateway/src/main.ts', resolveAll(sources, workspaces), sources)].sort(),
    ).toEqual(['crds/src/index.ts', 'crds/src/names.ts', 'gateway/src/a.ts', 'gateway/src/main.ts']);
  });

  it('as a command: exit 0 on the repository, naming the pending rule', () => {
    const res = spawnSync(process.execPath, [join(REPO_ROOT, 'hack', 'import-boundaries.ts')], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(res.stdout).toMatch(/none crosses a boundary/);
    expect(res.status, res.stderr).toBe(0);
    for (const rule of RULES.filter((r) => r.knownViolations))
      expect(res.stderr).toContain(
        `${rule.name}: ${rule.knownViolations!.imports.length} known violation(s)`,
      );
  });
});
