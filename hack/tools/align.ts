/**
 * Raises the modules a wrapper module (hack/tools/<name>) compiles to the versions another build
 * compiles, where the other's are newer, so that Go's build cache shares their packages: a package
 * is reused only when its module version and those of everything it imports are the same. Helm 3
 * is aligned on Helm 4, CoreDNS on Helm 4 (docs/ci.md#cold-builds). Never lowers a version: what the
 * tool's own go.mod requires stays the floor.
 *
 *   node hack/tools/align.ts <name> <reference>   (reference: another hack/tools name, or kube)
 *
 * Then rebuild the tool (hack/build-go-tool.sh <name>) and run what uses it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const HACK = join(import.meta.dirname, '..');
const GO_ENV = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' };

/**
 * Go's module version order (SemVer 2.0 precedence; pseudo-versions are pre-releases):
 * < 0, 0, > 0. Hand-written because npm's `semver` is only a transitive dependency here, and
 * adding it would change package-lock.json, an input of every e2e image's cache key.
 */
export function compareGoVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = /^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(v);
    if (!m) throw new Error(`not a Go module version: ${JSON.stringify(v)}`);
    return { core: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4]?.split('.') ?? [] };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return (x.core[i] ?? 0) - (y.core[i] ?? 0);
  if (x.pre.length === 0 || y.pre.length === 0) return y.pre.length - x.pre.length; // a release is newer
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i] as string;
    const q = y.pre[i] as string;
    if (p === q) continue;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) return Number(p) - Number(q);
    if (pn !== qn) return pn ? -1 : 1; // numeric identifiers sort first
    return p < q ? -1 : 1;
  }
  return x.pre.length - y.pre.length;
}

/** `module@version` for every module both use whose reference version is newer than the target's. */
export function upgrades(target: Map<string, string>, reference: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [path, version] of reference) {
    const have = target.get(path);
    if (have !== undefined && compareGoVersions(version, have) > 0) out.push(`${path}@${version}`);
  }
  return out.sort();
}

/** The packages a wrapper builds: hack/kube builds the commands its tools.go imports. */
function packagesOf(name: string): { dir: string; packages: string[] } {
  if (name === 'kube') {
    const tools = readFileSync(join(HACK, 'kube', 'tools.go'), 'utf8');
    return {
      dir: join(HACK, 'kube'),
      packages: [...tools.matchAll(/_ "([^"]+)"/g)].map((m) => m[1] as string),
    };
  }
  const dir = join(HACK, 'tools', name);
  const env = readFileSync(join(dir, 'tool.env'), 'utf8');
  const value = (key: string) => new RegExp(`^${key}="?([^"\\n]*)"?$`, 'm').exec(env)?.[1];
  const packages = [
    value('PACKAGE'),
    ...(value('EXTRA_BINARIES') ?? '').split(/\s+/).map((e) => e.split('=')[1]),
  ];
  return { dir, packages: packages.filter((p): p is string => Boolean(p)) };
}

function compiledModules(name: string): Map<string, string> {
  const { dir, packages } = packagesOf(name);
  const out = execFileSync(
    'go',
    ['list', '-deps', '-f', '{{with .Module}}{{.Path}} {{.Version}}{{end}}', ...packages],
    {
      cwd: dir,
      env: GO_ENV,
      encoding: 'utf8',
    },
  );
  return new Map(
    out
      .split('\n')
      .filter((l) => l.includes(' ') && !l.endsWith(' '))
      .map((l) => l.split(' ') as [string, string]),
  );
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  const [name, reference] = process.argv.slice(2);
  if (!name || !reference || name === 'kube') {
    console.error('usage: node hack/tools/align.ts <hack/tools name> <reference: hack/tools name or kube>');
    process.exit(2);
  }
  const dir = packagesOf(name).dir;
  const raise = upgrades(compiledModules(name), compiledModules(reference));
  if (raise.length === 0) {
    console.error(`align: ${name} already compiles ${reference}'s versions of every module they share`);
    process.exit(0);
  }
  console.error(`align: raising ${raise.length} modules of ${name} to ${reference}'s versions`);
  execFileSync('go', ['get', ...raise], { cwd: dir, env: GO_ENV, stdio: 'inherit' });
  execFileSync('go', ['mod', 'tidy'], { cwd: dir, env: GO_ENV, stdio: 'inherit' });
}
