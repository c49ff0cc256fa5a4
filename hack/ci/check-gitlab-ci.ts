/**
 * Static checks of .gitlab-ci.yml against the repository, the mistakes GitLab itself only reports
 * when a pipeline runs (or never):
 *   - it parses; every job's stage is declared in `stages`;
 *   - `extends`, `needs` and `dependencies` name jobs that exist;
 *   - every script line that runs a repository script (`./x`, `bash x`, `hack/…`, `node hack/…`)
 *     names a file that exists, and every `make <target>` a target of the Makefile;
 *   - every image (jobs, default, services, and `*_IMAGE` variables) is pinned: a tag that is not
 *     `latest` and names a version, or a digest;
 *   - a job whose `parallel: matrix` runs over IMAGE (build, scan) names exactly the root
 *     Dockerfile's image targets: a new image cannot be forgotten, nor a removed one still built.
 *   node hack/ci/check-gitlab-ci.ts [file]     exit 1 listing every problem
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { imageTargets, parseDockerfile } from '../images/dockerfile.ts';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');

/** Top-level keys that are not jobs (GitLab's global keywords). */
const GLOBAL_KEYS = new Set([
  'stages',
  'variables',
  'workflow',
  'default',
  'include',
  'image',
  'services',
  'cache',
  'before_script',
  'after_script',
  'spec',
]);
const SCRIPT_KEYS = ['before_script', 'script', 'after_script'] as const;

type Job = Record<string, unknown>;

/** Targets defined in a Makefile (rule heads; variable assignments excluded). */
export function makeTargets(makefile: string): Set<string> {
  const targets = new Set<string>();
  for (const line of makefile.split('\n')) {
    const m = /^([A-Za-z0-9_./%-]+(?:[ \t]+[A-Za-z0-9_./%-]+)*)[ \t]*::?(?!=)/.exec(line);
    if (m) for (const t of m[1]!.split(/[ \t]+/)) targets.add(t);
  }
  return targets;
}

const asList = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const lines = (v: unknown): string[] => asList(v).flatMap((x) => (Array.isArray(x) ? lines(x) : [String(x)]));

/** Repository paths a shell line runs: ./x, bash|sh x, node x, or a path under hack/. */
export function scriptPaths(line: string): string[] {
  const found = new Set<string>();
  const token = String.raw`([^\s;&|()'"<>]+)`;
  const patterns = [
    new RegExp(String.raw`(?:^|[\s;&|(])(?:bash|sh|node)\s+(?:-\S+\s+)*` + token, 'g'),
    /(?:^|[\s;&|(])(\.\/[^\s;&|()'"<>]+)/g,
    /(?:^|[\s;&|(])(hack\/[^\s;&|()'"<>]+)/g,
  ];
  for (const re of patterns)
    for (const m of line.matchAll(re)) {
      const path = m[1]!.replace(/^\.\//, '');
      // Variables are resolved at run time; `-e`/`-c` code and URLs are not files.
      if (path.includes('$') || path.startsWith('-') || path.includes('://')) continue;
      if (/^(bash|sh|node)$/.test(path)) continue;
      found.add(path);
    }
  return [...found];
}

/** `make` targets a shell line asks for (flags and VAR=value arguments skipped). */
export function makeTargetsUsed(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/(?:^|[\s;&|(])make((?:\s+[^\s;&|()]+)*)/g)) {
    for (const arg of m[1]!.trim().split(/\s+/).filter(Boolean)) {
      if (arg.startsWith('-') || arg.includes('=')) continue;
      if (!/^[A-Za-z0-9_./-]+$/.test(arg)) break;
      out.push(arg);
    }
  }
  return out;
}

/** Why an image reference is not pinned, or null when it is. */
export function imageProblem(ref: string): string | null {
  if (/@sha256:[0-9a-f]{64}$/.test(ref)) return null;
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  if (colon < 0) return 'has no tag (pin a version or a digest)';
  const tag = last.slice(colon + 1);
  if (tag === 'latest') return 'uses :latest (pin a version or a digest)';
  if (!/\d/.test(tag)) return `tag "${tag}" names no version`;
  return null;
}

const expand = (value: string, vars: Record<string, unknown>): string =>
  value.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (whole, name: string) =>
    typeof vars[name] === 'string' || typeof vars[name] === 'number'
      ? String(vars[name])
      : typeof vars[name] === 'object' && vars[name] && 'value' in (vars[name] as object)
        ? String((vars[name] as { value: unknown }).value)
        : whole,
  );

export type CheckOptions = { root?: string; makefile?: string; dockerfile?: string };

/** Every problem found in the pipeline text; empty when it is consistent with the repository. */
export function checkPipeline(text: string, opts: CheckOptions = {}): string[] {
  const root = opts.root ?? REPO_ROOT;
  const problems: string[] = [];
  const doc = parseDocument(text);
  if (doc.errors.length) return doc.errors.map((e) => `not valid YAML: ${e.message}`);
  const ci = doc.toJS() as Record<string, unknown> | null;
  if (!ci || typeof ci !== 'object') return ['empty pipeline'];

  const stages = asList(ci.stages).map(String);
  if (stages.length === 0) problems.push('no `stages` declared');
  const targets = makeTargets(opts.makefile ?? readFileSync(join(root, 'Makefile'), 'utf8'));
  const images = imageTargets(
    parseDockerfile(opts.dockerfile ?? readFileSync(join(root, 'Dockerfile'), 'utf8')),
  ).map((s) => s.name);
  const globalVars = (ci.variables ?? {}) as Record<string, unknown>;
  const defaults = (ci.default ?? {}) as Job;
  const all = new Map(
    Object.entries(ci).filter(([k, v]) => !GLOBAL_KEYS.has(k) && v && typeof v === 'object') as Array<
      [string, Job]
    >,
  );
  const jobs = [...all].filter(([name]) => !name.startsWith('.'));

  // A job with its `extends` chain merged (GitLab merges hashes deeply; top-level keys suffice here).
  const resolve = (name: string, seen: string[] = []): Job => {
    const job = all.get(name) ?? {};
    if (seen.includes(name)) {
      problems.push(`${name}: extends itself (${[...seen, name].join(' → ')})`);
      return job;
    }
    let merged: Job = {};
    for (const parent of asList(job.extends).map(String)) {
      if (!all.has(parent)) problems.push(`${name}: extends "${parent}", which is not defined`);
      else merged = { ...merged, ...resolve(parent, [...seen, name]) };
    }
    return { ...merged, ...job };
  };

  const checkImage = (where: string, image: unknown, vars: Record<string, unknown>) => {
    if (image === undefined || image === null) return;
    const raw = typeof image === 'string' ? image : String((image as { name?: unknown }).name ?? '');
    const ref = expand(raw, vars);
    if (ref.includes('$')) problems.push(`${where}: image "${raw}" uses a variable that is not defined`);
    else {
      const why = imageProblem(ref);
      if (why) problems.push(`${where}: image "${ref}" ${why}`);
    }
  };

  checkImage('image', ci.image, globalVars);
  checkImage('default', defaults.image, globalVars);
  for (const s of asList(defaults.services)) checkImage('default services', s, globalVars);
  for (const [name, value] of Object.entries(globalVars))
    if (name.endsWith('_IMAGE'))
      checkImage(`variables.${name}`, expand(String(value), globalVars), globalVars);

  for (const [name] of all) resolve(name); // reports broken extends on hidden templates too
  for (const [name] of jobs) {
    const job = resolve(name);
    const vars = { ...globalVars, ...((job.variables ?? {}) as Record<string, unknown>) };
    const stage = String(job.stage ?? 'test');
    if (!stages.includes(stage))
      problems.push(`${name}: stage "${stage}" is not in stages (${stages.join(', ')})`);
    for (const need of asList(job.needs)) {
      if (need && typeof need === 'object' && ('project' in need || 'pipeline' in need)) continue;
      const target = typeof need === 'string' ? need : String((need as { job?: unknown }).job);
      if (target.startsWith('.') || !all.has(target))
        problems.push(`${name}: needs "${target}", which is not a job`);
    }
    for (const dep of asList(job.dependencies).map(String))
      if (dep.startsWith('.') || !all.has(dep))
        problems.push(`${name}: dependencies names "${dep}", which is not a job`);
    checkImage(name, job.image ?? defaults.image ?? ci.image, vars);
    for (const s of asList(job.services)) checkImage(`${name} services`, s, vars);
    const matrix = asList((job.parallel as { matrix?: unknown } | undefined)?.matrix) as Array<
      Record<string, unknown>
    >;
    if (matrix.some((entry) => entry && typeof entry === 'object' && 'IMAGE' in entry)) {
      const named = matrix.flatMap((entry) => lines(entry?.IMAGE));
      for (const image of images)
        if (!named.includes(image))
          problems.push(`${name}: matrix leaves out image "${image}" (a Dockerfile target)`);
      for (const image of named)
        if (!images.includes(image))
          problems.push(`${name}: matrix names image "${image}", which is not a Dockerfile target`);
    }
    if (!job.script && !job.trigger) problems.push(`${name}: has no script`);
    for (const key of SCRIPT_KEYS) {
      const fromDefault = job[key] === undefined ? defaults[key] : job[key];
      for (const line of lines(fromDefault)) {
        for (const path of scriptPaths(line))
          if (!existsSync(join(root, path)))
            problems.push(`${name}: ${key} runs "${path}", which does not exist in the repository`);
        for (const t of makeTargetsUsed(line))
          if (!targets.has(t)) problems.push(`${name}: ${key} runs "make ${t}", not a Makefile target`);
      }
    }
  }
  return problems;
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  const file = process.argv[2] ?? join(REPO_ROOT, '.gitlab-ci.yml');
  const problems = checkPipeline(readFileSync(file, 'utf8'));
  if (problems.length) {
    console.error(`${file}: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(
    `${relative(process.cwd(), file) || file}: stages, jobs, scripts, make targets and images check out`,
  );
}
