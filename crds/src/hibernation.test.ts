import { describe, expect, it } from 'vitest';
import { refusalReason } from './lifecycle.ts';
import { assessmentTemplateSpec } from './template.ts';

const base = { title: 'T', sandboxes: [{ name: 'db', postgres: { dataset: 'retail' } }] };
const issues = (spec: object) => {
  const res = assessmentTemplateSpec.safeParse({ ...base, ...spec });
  return res.success ? [] : res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('template onExpiry and hibernateFor', () => {
  it('defaults to Delete, without a retention', () => {
    const spec = assessmentTemplateSpec.parse(base);
    expect(spec.onExpiry).toBe('Delete');
    expect(spec.hibernateFor).toBeUndefined();
  });

  it('accepts Hibernate with a retention up to 720h', () => {
    expect(issues({ onExpiry: 'Hibernate' })).toEqual([]);
    expect(issues({ onExpiry: 'Hibernate', hibernateFor: '720h' })).toEqual([]);
  });

  it('refuses a retention above 720h, naming hibernateFor', () => {
    expect(issues({ onExpiry: 'Hibernate', hibernateFor: '721h' })).toEqual([
      'hibernateFor: hibernateFor must be at most 720h (30 days)',
    ]);
  });

  it('refuses a retention that is not a duration, naming hibernateFor', () => {
    expect(issues({ onExpiry: 'Hibernate', hibernateFor: '3 days' })).toEqual([
      expect.stringMatching(/^hibernateFor: must be a duration/),
    ]);
  });

  it('refuses hibernateFor without onExpiry Hibernate', () => {
    expect(issues({ hibernateFor: '24h' })).toEqual([
      'hibernateFor: hibernateFor applies only with onExpiry: Hibernate',
    ]);
  });

  it('refuses an unknown onExpiry, naming it', () => {
    expect(issues({ onExpiry: 'Archive' })).toEqual([expect.stringMatching(/^onExpiry: /)]);
  });
});

describe('a hibernated assessment refuses the candidate', () => {
  it('is ended for the API and the gateway, even while reopened for staff', () => {
    const a = { spec: { revoked: false }, status: { phase: 'Hibernated' as const } };
    expect(refusalReason(a as never, new Date(), true)).toBe('ended');
    expect(
      refusalReason({ spec: {}, status: { phase: 'Ready' } } as never, new Date(), true),
    ).toBeUndefined();
  });
});
