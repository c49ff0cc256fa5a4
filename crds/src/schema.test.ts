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

describe('check grader', () => {
  const base = {
    title: 'T',
    sandboxes: [{ name: 'db', postgres: { dataset: 'retail@1' } }],
  };
  const task = (checks: unknown[]) => ({
    ...base,
    tasks: [{ id: 'load', sandbox: 'db', prompt: 'Load it.', grader: { check: { checks } } }],
  });
  const ok = {
    name: 'customers-complete',
    sql: 'SELECT 1',
    expect: { noRows: true },
    hint: 'Load them all.',
  };
  const issues = (spec: unknown) => {
    const res = assessmentTemplateSpec.safeParse(spec);
    return res.success ? [] : res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts named checks of every expectation', () => {
    expect(
      issues(
        task([
          ok,
          { ...ok, name: 'some', expect: { someRows: true } },
          { ...ok, name: 'rows', expect: { rows: [['1', 'NULL']] } },
          { ...ok, name: 'same', expect: { sameAsSource: 'SELECT count(*) FROM retail.customers' } },
        ]),
      ),
    ).toEqual([]);
  });

  it('refuses duplicate check names, naming the second', () =>
    expect(issues(task([ok, ok]))).toEqual([
      'tasks.0.grader.check.checks.1.name: duplicate check name "customers-complete"',
    ]));

  it('refuses a task without checks', () =>
    expect(issues(task([]))).toEqual([expect.stringMatching(/^tasks\.0\.grader\.check\.checks: Too small/)]));

  it.each([
    ['no expectation', {}],
    ['two expectations', { noRows: true, rows: [['1']] }],
    ['noRows: false alone', { noRows: false }],
  ])('refuses %s, naming expect', (_l, expectation) =>
    expect(issues(task([{ ...ok, expect: expectation }]))).toEqual([
      'tasks.0.grader.check.checks.0.expect: expect must set exactly one of noRows: true, someRows: true, rows or sameAsSource',
    ]),
  );

  it.each(['hint', 'name'])('requires %s, naming it', (field) => {
    const { [field as keyof typeof ok]: _drop, ...rest } = ok;
    expect(issues(task([rest]))).toEqual([
      expect.stringMatching(new RegExp(`^tasks\\.0\\.grader\\.check\\.checks\\.0\\.${field}: `)),
    ]);
  });

  it('puts the rules in the CRD for the API server: exactly one grader, one expectation, names as list keys, a postgres sandbox', () => {
    const tpl = allCrds().find((c) => c.spec.names.kind === 'AssessmentTemplate')!;
    const spec = tpl.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
    const grader = spec.properties!.tasks!.items!.properties!.grader!;
    expect(JSON.stringify(grader['x-kubernetes-validations'])).toMatch(/has\(self\.check\)/);
    const checks = grader.properties!.check!.properties!.checks!;
    expect(checks).toMatchObject({
      minItems: 1,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    });
    expect(checks.items!.required).toEqual(['name', 'expect', 'hint']);
    expect(JSON.stringify(checks.items!['x-kubernetes-validations'])).toMatch(/exactly one of sql or mongo/);
    expect(JSON.stringify(checks.items!.properties!.expect!['x-kubernetes-validations'])).toMatch(
      /exactly one of noRows/,
    );
    expect(JSON.stringify(spec['x-kubernetes-validations'])).toMatch(
      /check grader must name a postgres or mongo sandbox/,
    );
    expect(JSON.stringify(spec['x-kubernetes-validations'])).toMatch(/mongo checks on a mongo sandbox/);
  });

  const mongoCheck = {
    name: 'devices-loaded',
    mongo: { collection: 'device_totals', pipeline: '[{"$count": "n"}]' },
    expect: { rows: [['3']] },
    hint: 'Load every device type.',
  };

  it('accepts a mongo check (a pipeline on a collection)', () =>
    expect(issues(task([mongoCheck]))).toEqual([]));

  it.each([
    ['neither sql nor mongo', { name: 'x', expect: { noRows: true }, hint: 'h' }],
    ['both sql and mongo', { ...mongoCheck, sql: 'SELECT 1' }],
  ])('refuses a check with %s, naming the check', (_l, c) =>
    expect(issues(task([c]))).toEqual([
      'tasks.0.grader.check.checks.0: a check must set exactly one of sql or mongo',
    ]),
  );

  it('refuses sameAsSource on a mongo check, naming the field', () =>
    expect(issues(task([{ ...mongoCheck, expect: { sameAsSource: 'SELECT 1' } }]))).toEqual([
      'tasks.0.grader.check.checks.0.expect.sameAsSource: sameAsSource compares with the data API source copy, which is SQL: a mongo check expects noRows, someRows or rows',
    ]));
});
