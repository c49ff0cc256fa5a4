/**
 * The root Dockerfile's stages, read well enough to check what each image holds
 * (hack/images/dockerfile.test.ts) and which images CI builds (hack/ci/check-gitlab-ci.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DOCKERFILE = 'Dockerfile';

export interface Copy {
  /** The stage copied from (`COPY --from=<stage>`); undefined: the build context. */
  from?: string;
  sources: string[];
  dest: string;
}

export interface Stage {
  name: string;
  /** The image or stage it starts from. */
  base: string;
  copies: Copy[];
  /** `RUN` lines, continuation lines joined. */
  runs: string[];
  /** Its own ENTRYPOINT (exec form), when it sets one. */
  entrypoint?: string[];
  /** Its own USER, when it sets one. */
  user?: string;
}

/** Instructions with their continuation lines joined; comments and blank lines dropped. */
function instructions(text: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!current && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    if (current && line.trim().startsWith('#')) continue;
    if (line.endsWith('\\')) current += `${line.slice(0, -1)} `;
    else {
      out.push((current + line).trim());
      current = '';
    }
  }
  if (current) out.push(current.trim());
  return out;
}

export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of instructions(text)) {
    const [keyword = '', ...rest] = instruction.split(/\s+/);
    const args = rest.join(' ');
    const stage = stages.at(-1);
    switch (keyword.toUpperCase()) {
      case 'FROM': {
        const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
        if (!m) throw new Error(`cannot read "${instruction}"`);
        stages.push({ name: m[2] ?? String(stages.length), base: m[1]!, copies: [], runs: [] });
        break;
      }
      case 'COPY': {
        if (!stage) throw new Error(`COPY before FROM: "${instruction}"`);
        const words = rest.filter((w) => w !== '');
        const flags = words.filter((w) => w.startsWith('--'));
        const paths = words.filter((w) => !w.startsWith('--'));
        const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
        stage.copies.push({ ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1)! });
        break;
      }
      case 'RUN':
        stage?.runs.push(args);
        break;
      case 'ENTRYPOINT':
        if (stage) stage.entrypoint = JSON.parse(args) as string[];
        break;
      case 'USER':
        if (stage) stage.user = args;
        break;
    }
  }
  return stages;
}

export function readDockerfile(root: string): Stage[] {
  return parseDockerfile(readFileSync(join(root, DOCKERFILE), 'utf8'));
}

/** The stages that are images: those that set their own ENTRYPOINT (others are build steps). */
export function imageTargets(stages: Stage[]): Stage[] {
  return stages.filter((s) => s.entrypoint);
}

/** A stage with the stages it is built on, base first. */
export function lineage(stages: Stage[], name: string): Stage[] {
  const stage = stages.find((s) => s.name === name);
  if (!stage) return [];
  return [...lineage(stages, stage.base), stage];
}
