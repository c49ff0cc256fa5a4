import { sandboxHostLabel } from '@epreuve/crds';

const KEY = 'k7qz2mxw4bn5rt6y';

import { describe, expect, it } from 'vitest';
import { type AssessmentObject, hostLabels, labelOf, resolveLabel } from './routes.ts';

const assessment = (
  phase: string,
  ready = true,
  extra: Partial<AssessmentObject['metadata']> = {},
  o: { startedAt?: string | null; revoked?: boolean; hostKey?: string | null; expiresAt?: null } = {},
): AssessmentObject =>
  ({
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'Assessment',
    metadata: { name: 'jane-doe', namespace: 'hiring', ...extra },
    spec: {
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Jane Doe' },
      startPolicy: 'Immediate',
      ...(o.revoked ? { revoked: true } : {}),
    },
    status: {
      phase,
      ...(o.hostKey === null ? {} : { hostKey: o.hostKey ?? KEY }),
      ...(o.startedAt === null ? {} : { startedAt: o.startedAt ?? '2026-11-22T16:00:00Z' }),
      ...(o.expiresAt === null ? {} : { expiresAt: '2026-11-22T20:00:00Z' }),
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
const warehouse = sandboxHostLabel(KEY, 'warehouse');
/** An hour before the deadline. */
const NOW = new Date('2026-11-22T19:00:00Z');

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
    expect(hostLabels(assessment('Ready'))).toEqual([warehouse, sandboxHostLabel(KEY, 'events')]);
  });

  it('serves nothing before the operator drew the host key, and never the old derivable names', () => {
    const keyless = assessment('Ready', true, {}, { hostKey: null });
    expect(hostLabels(keyless)).toEqual([]);
    expect(resolveLabel(warehouse, [keyless], NOW)).toHaveProperty('refused');
    // Another assessment's key is another name: knowing team and name gives nothing to route on.
    const other = assessment('Ready', true, {}, { hostKey: 'aaaaaaaaaaaaaaaa' });
    expect(hostLabels(other)).not.toContain(warehouse);
    expect(resolveLabel(warehouse, [other], NOW)).toHaveProperty('refused');
  });

  it('routes a ready sandbox of a Ready assessment to its Service', () => {
    expect(resolveLabel(warehouse, [assessment('Ready')], NOW)).toEqual({
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
    [
      'the candidate has not pressed Start',
      [assessment('Ready', true, {}, { startedAt: null })],
      /not started: open your link and press Start/,
    ],
    [
      'the clock has a start but no deadline yet (a box with no end)',
      [assessment('Ready', true, {}, { expiresAt: null })],
      /the clock is being started/,
    ],
    [
      'the assessment was revoked (before the operator saw it)',
      [assessment('Ready', true, {}, { revoked: true })],
      /revoked/,
    ],
  ])('refuses with a reason when %s', (_label, claimants, reason) => {
    const resolution = resolveLabel(warehouse, claimants as AssessmentObject[], NOW);
    expect(resolution).toHaveProperty('refused');
    expect((resolution as { refused: string }).refused).toMatch(reason);
  });

  it('closes at the deadline by the clock, without waiting for the operator, tolerating 2 s of skew', () => {
    const ready = [assessment('Ready')];
    expect(resolveLabel(warehouse, ready, new Date('2026-11-22T20:00:01Z'))).toHaveProperty('route');
    expect(resolveLabel(warehouse, ready, new Date('2026-11-22T20:00:03Z'))).toEqual({
      refused: 'this assessment ended at 2026-11-22T20:00:00Z',
    });
  });
});
