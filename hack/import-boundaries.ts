/**
 * Who may import whom. DESIGN.md: shared libraries (`crds`, `kube`), and no process imports
 * another process — the operator, the API, the gateway and the sandboxes meet only through the
 * contracts in `crds` and the Kubernetes API. This reads every TypeScript/JavaScript import in the
 * repository (static, dynamic, re-exports, require; not the text of strings and comments),
 * resolves it to a repository path (relative paths, and `@epreuve/*` through each workspace's
 * package.json), and checks it against RULES.
 *   node hack/import-boundaries.ts     exit 1 listing every violation
 * The unit tier runs the same checks (hack/import-boundaries.test.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(import.meta.dirname, '..');

export interface BoundaryRule {
  /** A short name: what the test calls it. */
  name: string;
  /** Files under these repository paths (a directory ends with `/`)… */
  from: string[];
  /** …import nothing under these. */
  to: string[];
  /** Only imports erased at run time (`import type …`, `export type … from`) are allowed. */
  allowTypeOnly?: boolean;
  why: string;
  /**
   * Violations that exist today and that work in flight removes, listed exactly as `file → import`:
   * anything else still fails, and so does the rule once these are gone (empty the list then).
   */
  knownViolations?: { until: string; imports: string[] };
}

const PROCESSES = ['operator/', 'api/', 'gateway/', 'sandboxes/'];

export const RULES: BoundaryRule[] = [
  {
    name: 'api ↛ operator, gateway',
    from: ['api/'],
    to: ['operator/', 'gateway/'],
    why: 'no process imports another process: the API meets the operator and the gateway only through crds and the Kubernetes API',
  },
  {
    name: 'gateway ↛ api, operator',
    from: ['gateway/'],
    to: ['api/', 'operator/'],
    why: 'the gateway depends on crds and kube only (its image holds nothing else)',
  },
  {
    name: 'operator ↛ api, gateway',
    from: ['operator/'],
    to: ['api/', 'gateway/'],
    why: 'no process imports another process',
  },
  {
    name: 'sandboxes ↛ api, operator, gateway',
    from: ['sandboxes/'],
    to: ['api/', 'operator/', 'gateway/'],
    why: 'what runs in a candidate namespace knows nothing of the platform around it',
  },
  {
    name: 'hack ↛ operator, api, gateway source',
    from: ['hack/'],
    to: ['operator/', 'api/', 'gateway/'],
    why: 'tooling uses the shared libraries (crds, kube) and runs the processes, it does not import them',
  },
  {
    name: 'kube ↛ processes, hack, test',
    from: ['kube/'],
    to: [...PROCESSES, 'hack/', 'test/'],
    why: 'the Kubernetes layer every process shares knows no process',
  },
  {
    name: 'kube imports only types from crds',
    from: ['kube/'],
    to: ['crds/'],
    allowTypeOnly: true,
    why: 'kube knows no Épreuve kind: KINDS and every other value come from crds in the processes (use `import type`)',
  },
  {
    name: 'crds ↛ any other workspace',
    from: ['crds/'],
    to: ['kube/', ...PROCESSES, 'hack/', 'test/'],
    why: 'crds is the contract every process shares; it depends on nothing of theirs',
  },
  {
    name: 'api/src/services ↛ api/src/plugins',
    from: ['api/src/services/'],
    to: ['api/src/plugins/'],
    why: 'services hold the logic and know nothing of HTTP; plugins wire them into fastify',
  },
];

// ── Reading imports ───────────────────────────────────────────────────────────────────────────

export interface ImportSite {
  specifier: string;
  line: number;
  /** Erased at run time: `import type …` or `export type … from`. */
  typeOnly: boolean;
  kind: 'import' | 'dynamic' | 'export' | 'require';
}

interface Token {
  type: 'name' | 'string' | 'punct' | 'value';
  value: string;
  line: number;
}

/** Words after which a `/` starts a regular expression rather than a division. */
const BEFORE_EXPRESSION = new Set([
  'return',
  'typeof',
  'case',
  'do',
  'else',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'instanceof',
  'yield',
  'await',
]);

/**
 * Tokens of TypeScript/JavaScript source, enough to find imports: names, string literals (their
 * content), punctuation; comments skipped; template literals, regular expressions and numbers as
 * opaque values (a template's `${…}` is read as code).
 */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  const n = source.length;
  let i = 0;
  let line = 1;
  let depth = 0;
  const templateDepths: number[] = [];
  const advance = (to: number) => {
    for (let k = i; k < to && k < n; k++) if (source[k] === '\n') line++;
    i = to;
  };
  const regexAllowed = () => {
    const prev = tokens.at(-1);
    if (!prev) return true;
    if (prev.type === 'punct') return !(prev.value === ')' || prev.value === ']' || prev.value === '}');
    if (prev.type === 'name') return BEFORE_EXPRESSION.has(prev.value);
    return false;
  };
  /** From inside a template literal: to its end, or into a `${` (code follows). */
  const template = () => {
    while (i < n) {
      const c = source[i];
      if (c === '\\') advance(i + 2);
      else if (c === '`') return advance(i + 1);
      else if (c === '$' && source[i + 1] === '{') {
        advance(i + 2);
        templateDepths.push(depth);
        return;
      } else advance(i + 1);
    }
  };
  while (i < n) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === '\n' || c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      advance(i + 1);
    } else if (c === '/' && next === '/') {
      const end = source.indexOf('\n', i);
      advance(end < 0 ? n : end);
    } else if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      advance(end < 0 ? n : end + 2);
    } else if (c === '"' || c === "'") {
      const start = line;
      let k = i + 1;
      let value = '';
      while (k < n && source[k] !== c && source[k] !== '\n') {
        if (source[k] === '\\') {
          value += source[k + 1] ?? '';
          k += 2;
        } else value += source[k++];
      }
      advance(k + 1);
      tokens.push({ type: 'string', value, line: start });
    } else if (c === '`') {
      tokens.push({ type: 'value', value: '`', line });
      advance(i + 1);
      template();
    } else if (c === '}' && templateDepths.length > 0 && depth === templateDepths.at(-1)) {
      templateDepths.pop();
      advance(i + 1);
      template();
    } else if (c === '/' && regexAllowed()) {
      let k = i + 1;
      let inClass = false;
      while (k < n && source[k] !== '\n') {
        const r = source[k];
        if (r === '\\') k++;
        else if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if (r === '/' && !inClass) break;
        k++;
      }
      if (source[k] !== '/') {
        // Not a regular expression after all (a line ended first): a lone slash.
        tokens.push({ type: 'punct', value: '/', line });
        advance(i + 1);
      } else {
        k++;
        while (k < n && /[a-z]/i.test(source[k]!)) k++;
        tokens.push({ type: 'value', value: source.slice(i, k), line });
        advance(k);
      }
    } else if (/[\p{ID_Start}$_#]/u.test(c)) {
      let k = i + 1;
      while (k < n && /[\p{ID_Continue}$\u200c\u200d]/u.test(source[k]!)) k++;
      tokens.push({ type: 'name', value: source.slice(i, k), line });
      advance(k);
    } else if (/[0-9]/.test(c) || (c === '.' && next !== undefined && /[0-9]/.test(next))) {
      let k = i + 1;
      while (k < n && /[0-9a-zA-Z_.]/.test(source[k]!)) k++;
      tokens.push({ type: 'value', value: source.slice(i, k), line });
      advance(k);
    } else {
      if (c === '{') depth++;
      else if (c === '}') depth--;
      tokens.push({ type: 'punct', value: c, line });
      advance(i + 1);
    }
  }
  return tokens;
}

/** Every module a source file asks for, with the line it does so on. */
export function importsOf(source: string): ImportSite[] {
  const tokens = tokenize(source);
  const sites: ImportSite[] = [];
  const at = (k: number) => tokens[k];
  const is = (k: number, type: Token['type'], value?: string) =>
    at(k)?.type === type && (value === undefined || at(k)?.value === value);
  /** From token k, the `from '<specifier>'` closing an import or export clause at brace depth 0. */
  const fromClause = (k: number): { specifier: string; end: number } | undefined => {
    let depth = 0;
    for (let j = k; j < tokens.length && j < k + 2000; j++) {
      const token = at(j)!;
      if (token.type === 'punct' && token.value === '{') depth++;
      else if (token.type === 'punct' && token.value === '}') depth--;
      else if (depth === 0 && token.type === 'punct' && token.value === ';') return undefined;
      else if (depth === 0 && token.type === 'name' && token.value === 'from' && is(j + 1, 'string'))
        return { specifier: at(j + 1)!.value, end: j + 1 };
      if (depth < 0) return undefined;
    }
    return undefined;
  };
  for (let k = 0; k < tokens.length; k++) {
    const token = at(k)!;
    if (token.type !== 'name' || is(k - 1, 'punct', '.')) continue;
    if (token.value === 'import') {
      if (is(k + 1, 'punct', '(')) {
        if (is(k + 2, 'string'))
          sites.push({ specifier: at(k + 2)!.value, line: token.line, typeOnly: false, kind: 'dynamic' });
      } else if (is(k + 1, 'string')) {
        sites.push({ specifier: at(k + 1)!.value, line: token.line, typeOnly: false, kind: 'import' });
      } else if (!is(k + 1, 'punct', '.')) {
        // `import type X`, `import type { … }`, `import type * as ns` — not `import type from`
        // or `import type, { … }` (a default import named "type").
        const typeOnly =
          is(k + 1, 'name', 'type') &&
          (is(k + 2, 'punct', '{') ||
            is(k + 2, 'punct', '*') ||
            (is(k + 2, 'name') && !is(k + 2, 'name', 'from')));
        // TypeScript's `import x = require('y')`.
        if (is(k + 2, 'punct', '=') && is(k + 3, 'name', 'require') && is(k + 5, 'string')) {
          sites.push({ specifier: at(k + 5)!.value, line: token.line, typeOnly: false, kind: 'require' });
          k += 5;
          continue;
        }
        const clause = fromClause(k + 1);
        if (clause) {
          sites.push({ specifier: clause.specifier, line: token.line, typeOnly, kind: 'import' });
          k = clause.end;
        }
      }
    } else if (token.value === 'export') {
      const typeOnly = is(k + 1, 'name', 'type') && (is(k + 2, 'punct', '{') || is(k + 2, 'punct', '*'));
      const first = typeOnly ? k + 2 : k + 1;
      if (!is(first, 'punct', '{') && !is(first, 'punct', '*')) continue;
      const clause = fromClause(first);
      // `export { a, b };` has no source: only a clause that reaches `from` before its `;`.
      if (clause) {
        sites.push({ specifier: clause.specifier, line: token.line, typeOnly, kind: 'export' });
        k = clause.end;
      }
    } else if (
      token.value === 'require' &&
      is(k + 1, 'punct', '(') &&
      is(k + 2, 'string') &&
      is(k + 3, 'punct', ')')
    ) {
      sites.push({ specifier: at(k + 2)!.value, line: token.line, typeOnly: false, kind: 'require' });
    }
  }
  return sites;
}

// ── The repository ────────────────────────────────────────────────────────────────────────────

const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;
const SKIP_DIRS = new Set(['node_modules', '.git', '.cache', 'coverage']);

/** Every source file of the repository (repository-relative, `/`-separated) and its text. */
export function readSources(root = REPO_ROOT, dir = ''): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (SKIP_DIRS.has(entry.name)) continue;
      for (const [p, text] of readSources(root, path)) files.set(p, text);
    } else if (entry.isFile() && SOURCE.test(entry.name)) {
      files.set(path, readFileSync(join(root, path), 'utf8'));
    }
  }
  return files;
}

/** A workspace: its directory and the `exports` of its package.json. */
export interface Workspace {
  dir: string;
  exports: Record<string, string>;
}

/** The root package.json's workspaces, by package name. */
export function readWorkspaces(root = REPO_ROOT): Map<string, Workspace> {
  const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    workspaces: string[];
  };
  const out = new Map<string, Workspace>();
  for (const dir of rootPackage.workspaces) {
    const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as {
      name: string;
      exports?: Record<string, string> | string;
    };
    const exports = typeof pkg.exports === 'string' ? { '.': pkg.exports } : (pkg.exports ?? {});
    out.set(pkg.name, { dir, exports });
  }
  return out;
}

/**
 * The repository path an import resolves to: a file for relative imports and exported
 * `@epreuve/*` entry points, the workspace's directory (with `/`) for anything else of a
 * workspace; undefined for `node:` built-ins and npm packages.
 */
export function resolveImport(
  fromFile: string,
  specifier: string,
  workspaces: Map<string, Workspace>,
): string | undefined {
  if (specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..')
    return posix.normalize(posix.join(posix.dirname(fromFile), specifier));
  const scoped = /^(@[^/]+\/[^/]+)(\/.*)?$/.exec(specifier);
  const workspace = scoped && workspaces.get(scoped[1]!);
  if (!workspace) return undefined;
  const entry = workspace.exports[scoped![2] ? `.${scoped![2]}` : '.'];
  return entry ? posix.normalize(posix.join(workspace.dir, entry)) : `${workspace.dir}/`;
}

export interface ResolvedImport extends ImportSite {
  file: string;
  /** Repository path the import reaches; undefined: outside the repository (npm, node:). */
  target: string | undefined;
  /** The source line, trimmed, for messages. */
  text: string;
}

/** Every import of every file, resolved. */
export function resolveAll(files: Map<string, string>, workspaces: Map<string, Workspace>): ResolvedImport[] {
  const out: ResolvedImport[] = [];
  for (const [file, source] of files) {
    const lines = source.split('\n');
    for (const site of importsOf(source))
      out.push({
        ...site,
        file,
        target: resolveImport(file, site.specifier, workspaces),
        text: (lines[site.line - 1] ?? '').trim(),
      });
  }
  return out;
}

const under = (path: string, prefix: string) =>
  prefix.endsWith('/') ? path.startsWith(prefix) || `${path}/` === prefix : path === prefix;

/** The imports breaking one rule, as `file → specifier` (what knownViolations lists). */
export function violations(rule: BoundaryRule, imports: ResolvedImport[]): ResolvedImport[] {
  return imports.filter(
    (i) =>
      i.target !== undefined &&
      rule.from.some((p) => under(i.file, p)) &&
      rule.to.some((p) => under(i.target!, p)) &&
      !(rule.allowTypeOnly && i.typeOnly),
  );
}

export const violationKey = (i: ResolvedImport) => `${i.file} → ${i.specifier}`;
export const describeViolation = (i: ResolvedImport) =>
  `${i.file}:${i.line}: ${i.text}${i.typeOnly ? '' : i.target ? `  (reaches ${i.target})` : ''}`;

/**
 * What each rule finds beyond its known violations, and the known violations that are gone:
 * both empty when the repository keeps its boundaries.
 */
export function check(
  imports: ResolvedImport[],
  rules = RULES,
): Array<{ rule: BoundaryRule; unexpected: ResolvedImport[]; fixed: string[] }> {
  return rules.map((rule) => {
    const found = violations(rule, imports);
    const known = new Set(rule.knownViolations?.imports ?? []);
    const keys = new Set(found.map(violationKey));
    return {
      rule,
      unexpected: found.filter((i) => !known.has(violationKey(i))),
      fixed: [...known].filter((k) => !keys.has(k)),
    };
  });
}

/**
 * The repository files a file reaches through the imports that exist at run time (type-only
 * imports are erased), itself included: what an image whose entrypoint it is must hold.
 */
export function runtimeClosure(
  entry: string,
  imports: ResolvedImport[],
  files: Map<string, string>,
): Set<string> {
  const byFile = new Map<string, ResolvedImport[]>();
  for (const i of imports) byFile.set(i.file, [...(byFile.get(i.file) ?? []), i]);
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || !files.has(file)) return;
    seen.add(file);
    for (const i of byFile.get(file) ?? []) if (!i.typeOnly && i.target) visit(i.target);
  };
  visit(entry);
  return seen;
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  const files = readSources();
  const imports = resolveAll(files, readWorkspaces());
  const problems = check(imports).flatMap(({ rule, unexpected, fixed }) => [
    ...unexpected.map((i) => `${rule.name}: ${describeViolation(i)}\n    ${rule.why}`),
    ...fixed.map((k) => `${rule.name}: "${k}" is gone: remove it from knownViolations`),
  ]);
  const pending = RULES.filter((r) => r.knownViolations?.imports.length);
  for (const rule of pending)
    console.error(
      `${rule.name}: ${rule.knownViolations!.imports.length} known violation(s), until ${rule.knownViolations!.until}`,
    );
  if (problems.length) {
    console.error(`${problems.length} import boundary violation(s):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(
    `${imports.length} imports in ${files.size} files checked against ${RULES.length} rules: none crosses a boundary`,
  );
}
