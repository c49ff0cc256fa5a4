import { sandboxHostLabel } from '@epreuve/crds';
import { describe, expect, it } from 'vitest';
import { type AssessmentObject, hostLabels, labelOf, resolveLabel } from './routes.ts';

const assessment = (
  phase: string,
  ready = true,
  extra: Partial<AssessmentObject['metadata']> = {},
): AssessmentObject =>
  ({
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'Assessment',
    metadata: { name: 'jane-doe', namespace: 'hiring', ...extra },
    spec: {
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Jane Doe' },
      startPolicy: 'Immediate',
    },
    status: {
      phase,
      expiresAt: '2026-11-22T20:00:00Z',
      sandboxes: [
        {
          name: 'warehouse',
          kind: 'postgres',
          ready,
          host: 'warehouse.epreuve-jane-doe-abcde.svc',
          port: 5432,
        },
        { name: 'events', kind: 'mongo', ready, host: 'events.epreuve-jane-doe-abcde.svc', port: 27017 },
      ],
    },
  }) as unknown as AssessmentObject;
const warehouse = sandboxHostLabel('hiring', 'jane-doe', 'warehouse');

describe('labelOf', () => {
  it.each([
    [`${warehouse}.sandbox.example.com`, warehouse],
    [`${warehouse.toUpperCase()}.Sandbox.Example.com.`, warehouse],
    ['sandbox.example.com', undefined],
    ['a.b.sandbox.example.com', undefined],
    ['warehouse.evil.com', undefined],
    ['xsandbox.example.com', undefined],
    ['-bad-.sandbox.example.com', undefined],
    [undefined, undefined],
  ])('%s → %s', (name, label) => {
    expect(labelOf(name, 'sandbox.example.com')).toBe(label);
  });
});

describe('resolveLabel', () => {
  it('indexes every sandbox of an assessment under its own label', () => {
    expect(hostLabels(assessment('Ready'))).toEqual([
      warehouse,
      sandboxHostLabel('hiring', 'jane-doe', 'events'),
    ]);
  });

  it('routes a ready sandbox of a Ready assessment to its Service', () => {
    expect(resolveLabel(warehouse, [assessment('Ready')])).toEqual({
      route: {
        assessment: 'hiring/jane-doe',
        sandbox: 'warehouse',
        kind: 'postgres',
        host: 'warehouse.epreuve-jane-doe-abcde.svc',
        port: 5432,
      },
    });
  });

  it.each([
    ['nobody claims it', [], /no sandbox is served under/],
    ['two assessments claim it', [assessment('Ready'), assessment('Ready')], /ambiguous/],
    ['the assessment expired', [assessment('Expired')], /ended at 2026-11-22T20:00:00Z/],
    ['the assessment is being deleted', [assessment('Ready', true, { deletionTimestamp: 'x' })], /deleted/],
    ['the assessment failed', [assessment('Failed')], /failed to start/],
    ['the assessment is provisioning', [assessment('Provisioning')], /still starting/],
    ['the sandbox is not ready', [assessment('Ready', false)], /still starting/],
  ])('refuses with a reason when %s', (_label, claimants, reason) => {
    const resolution = resolveLabel(warehouse, claimants as AssessmentObject[]);
    expect(resolution).toHaveProperty('refused');
    expect((resolution as { refused: string }).refused).toMatch(reason);
  });
});
