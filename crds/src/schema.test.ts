import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { assessmentSpec } from './assessment.ts';
import { durationMs } from './common.ts';
import { allCrds, type OpenApiSchema, toStructuralSchema } from './crd.ts';
import { assessmentTemplateSpec, sandboxKind } from './template.ts';

const samples = join(import.meta.dirname, '..', '..', 'manifests', 'samples');

describe('zod schemas', () => {
  it('accept the samples and fill in defaults', () => {
    const tpl = assessmentTemplateSpec.parse(
      parse(readFileSync(join(samples, 'backend-engineer.yaml'), 'utf8')).spec,
    );
    expect(tpl.sandboxes[0]).toEqual({
      name: 'db',
      postgres: { dataset: 'retail@1', version: '18', storage: '1Gi' },
    });
    expect(tpl.network.egress).toBe('dns-only');
    const asmt = assessmentSpec.parse(parse(readFileSync(join(samples, 'jane-doe.yaml'), 'utf8')).spec);
    expect(asmt.startPolicy).toBe('OnFirstAccess');
  });

  it('report the path of a bad field', () => {
    const res = assessmentTemplateSpec.safeParse({ title: 'T', duration: 'soon', sandboxes: [] });
    expect(res.success).toBe(false);
    const paths = res.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['duration', 'sandboxes']));
  });
});

describe('durationMs', () => {
  it.each([
    ['4h', 4 * 3600_000],
    ['90m', 90 * 60_000],
    ['1h30m', 90 * 60_000],
  ])('%s', (input, ms) => expect(durationMs(input)).toBe(ms));

  it.each(['', '4', 'h', '1d', '-1h'])('refuses %j', (input) =>
    expect(() => durationMs(input)).toThrow(/invalid duration/),
  );
});

describe('sandboxKind', () => {
  it('names the one kind set', () =>
    expect(sandboxKind({ name: 'x', mongo: { dataset: 'retail', version: '7.0', storage: '1Gi' } })).toBe(
      'mongo',
    ));
  it('refuses none', () => expect(() => sandboxKind({ name: 'x' })).toThrow(/exactly one kind/));
});

/** Walks a schema, calling fn on every node with its path. */
function walk(node: OpenApiSchema, path: string, fn: (n: OpenApiSchema, p: string) => void): void {
  fn(node, path);
  for (const [k, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${k}`, fn);
  if (node.items) walk(node.items, `${path}[]`, fn);
}

describe('generated CRD schemas', () => {
  for (const crd of allCrds()) {
    const root = crd.spec.versions[0]!.schema.openAPIV3Schema;
    it(`${crd.metadata.name}: is structural and documented`, () => {
      walk(root, '', (node, path) => {
        expect(node.type, `${path} has a type`).toBeTypeOf('string');
        for (const bad of [
          '$ref',
          '$schema',
          'anyOf',
          'oneOf',
          'allOf',
          'additionalProperties',
          'uniqueItems',
        ]) {
          expect(node, `${path} has no ${bad}`).not.toHaveProperty(bad);
        }
        if (!path.startsWith('.spec') && !path.startsWith('.status')) return;
        // Bounded sizes keep CEL cost estimates under the API server's limit.
        if (node.type === 'string' && !node.enum)
          expect(node.maxLength, `${path} has a maxLength`).toBeTypeOf('number');
        if (node.type === 'array') expect(node.maxItems, `${path} has maxItems`).toBeTypeOf('number');
        expect(node.description, `${path} has a description`).toBeTruthy();
      });
    });
  }

  it('refuses unions, which a structural schema cannot express', () => {
    expect(() => toStructuralSchema(z.object({ a: z.union([z.string(), z.number()]) }))).toThrow(
      /\.a: anyOf is not structural/,
    );
  });
});
