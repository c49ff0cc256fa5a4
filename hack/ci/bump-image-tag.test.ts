import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { bumpFile, bumpImageTag } from './bump-image-tag.ts';

const SCRIPT = join(import.meta.dirname, 'bump-image-tag.ts');
const VALUES = join(import.meta.dirname, '..', '..', 'argocd', 'values');
const dir = mkdtempSync(join(tmpdir(), 'epreuve-bump-'));

describe('bump-image-tag', () => {
  it.each(['dev', 'staging', 'prod'])('changes only image.tag in argocd/values/%s.yaml', (env) => {
    const before = readFileSync(join(VALUES, `${env}.yaml`), 'utf8');
    const after = bumpImageTag(before, 'v1.4.0');
    expect(parse(after).image.tag).toBe('v1.4.0');
    // Exactly one line differs; every comment and every other line is kept byte for byte.
    const [a, b] = [before.split('\n'), after.split('\n')];
    expect(b).toHaveLength(a.length);
    const changed = a.flatMap((line, i) => (line === b[i] ? [] : [[line, b[i]]]));
    expect(changed).toEqual([[expect.stringMatching(/^ {2}tag: /), '  tag: "v1.4.0"']]);
    expect(after).toContain('# Épreuve on');
  });

  it('keeps an inline comment and quotes a tag YAML would read as a number', () => {
    const text = '# top\nimage:\n  registry: r  # keep\n  tag: 0.1.0   # the tag\nother: { tag: x }\n';
    const out = bumpImageTag(text, '1.10');
    expect(out).toBe('# top\nimage:\n  registry: r  # keep\n  tag: "1.10"   # the tag\nother: { tag: x }\n');
    expect(parse(out).image.tag).toBe('1.10');
    expect(bumpImageTag("image:\n  tag: 'a'\n", 'b')).toBe("image:\n  tag: 'b'\n");
  });

  it.each([
    ['no image map', 'operator:\n  replicas: 1\n', /f.yaml: no "image" map/],
    ['image without tag', 'image:\n  registry: r\n', /f.yaml: no "image.tag" key/],
    ['image.tag that is a map', 'image:\n  tag: { a: 1 }\n', /f.yaml: no "image.tag" key/],
    ['broken YAML', 'image: [\n', /f.yaml: not valid YAML/],
  ])('refuses %s', (_label, text, message) => {
    expect(() => bumpImageTag(text, 'v1', 'f.yaml')).toThrow(message);
  });

  it('refuses a tag a registry would not accept', () => {
    expect(() => bumpImageTag('image:\n  tag: a\n', 'v1.0 ; rm')).toThrow(/not a valid image tag/);
    expect(() => bumpImageTag('image:\n  tag: a\n', '')).toThrow(/not a valid image tag/);
  });

  it('rewrites the file, and says unchanged on a second run', () => {
    const file = join(dir, 'dev.yaml');
    copyFileSync(join(VALUES, 'dev.yaml'), file);
    expect(bumpFile(file, 'abc1234')).toBe(true);
    expect(bumpFile(file, 'abc1234')).toBe(false);
    expect(parse(readFileSync(file, 'utf8')).image.tag).toBe('abc1234');
  });

  it('as a command: prints changed, errors clearly on a missing file or key, usage without args', () => {
    const file = join(dir, 'cli.yaml');
    writeFileSync(file, 'image:\n  tag: "0.1.0"\n');
    const ok = spawnSync(process.execPath, [SCRIPT, file, 'deadbee'], { encoding: 'utf8' });
    expect([ok.status, ok.stdout]).toEqual([0, 'changed\n']);
    const missing = spawnSync(process.execPath, [SCRIPT, join(dir, 'nope.yaml'), 'v1'], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/bump-image-tag: .*nope.yaml: cannot read \(ENOENT\)/);
    writeFileSync(file, 'api:\n  replicas: 1\n');
    const noKey = spawnSync(process.execPath, [SCRIPT, file, 'v1'], { encoding: 'utf8' });
    expect(noKey.status).toBe(1);
    expect(noKey.stderr).toMatch(/cli.yaml: no "image" map/);
    const usage = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/usage: node hack\/ci\/bump-image-tag.ts <values file> <tag>/);
  });
});
