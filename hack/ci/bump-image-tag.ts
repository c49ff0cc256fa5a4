/**
 * The GitOps deploy step: sets `image.tag` in an Argo CD values file and changes nothing else.
 *   node hack/ci/bump-image-tag.ts argocd/values/dev.yaml 1a2b3c4d
 * The file is parsed with the `yaml` Document API to find the scalar, and only that scalar's
 * source range is replaced, so comments, quoting and layout stay byte for byte. Prints "changed" or
 * "unchanged" (the deploy job commits only on "changed").
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, parseDocument, Scalar } from 'yaml';

/** An OCI tag: what registries accept (distribution spec). */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** The file's text with image.tag set to tag; throws naming the file and key when it cannot. */
export function bumpImageTag(text: string, tag: string, file = 'values'): string {
  if (!TAG.test(tag)) throw new Error(`"${tag}" is not a valid image tag`);
  const doc = parseDocument(text);
  if (doc.errors.length) throw new Error(`${file}: not valid YAML: ${doc.errors[0]!.message}`);
  const image = doc.get('image', true);
  if (!isMap(image)) throw new Error(`${file}: no "image" map (expected image.tag)`);
  const node = image.get('tag', true);
  if (!isScalar(node) || !node.range) throw new Error(`${file}: no "image.tag" key with a scalar value`);
  // Quoted always: a tag like 1.10 or 0e1 must stay a string.
  const type = node.type === Scalar.QUOTE_SINGLE ? "'" : '"';
  const [start, end] = node.range;
  return text.slice(0, start) + type + tag + type + text.slice(end);
}

/** Rewrites the file in place; true when it changed. Throws if the file is missing. */
export function bumpFile(path: string, tag: string): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const next = bumpImageTag(text, tag, path);
  if (next === text) return false;
  writeFileSync(path, next);
  return true;
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)) === '') {
  const [path, tag] = process.argv.slice(2);
  if (!path || !tag) {
    console.error('usage: node hack/ci/bump-image-tag.ts <values file> <tag>');
    process.exit(2);
  }
  try {
    console.log(bumpFile(path, tag) ? 'changed' : 'unchanged');
  } catch (err) {
    console.error(`bump-image-tag: ${(err as Error).message}`);
    process.exit(1);
  }
}
