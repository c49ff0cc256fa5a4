import type { AssessmentStatus } from '@epreuve/crds';
import { timeline } from '@epreuve/crds';
import { describe, expect, it } from 'vitest';
import { expiryDecision, nextWake } from './expiry.ts';
import { assessment, template } from './fixtures.test-helpers.ts';

// The fixture assessment starts at 10:00 (Immediate) and runs the template's default 4h: deadline 14:00.
const at = (hhmm: string, day = '2026-11-22') => new Date(`${day}T${hhmm}:00Z`);
const hibernating = template({ onExpiry: 'Hibernate', hibernateFor: '48h' });
const deleting = template();

function decideAt(now: Date, o: { spec?: object; status?: AssessmentStatus; annotations?: object } = {}) {
  const a = {
    ...assessment(o.spec as Record<string, unknown>, { annotations: o.annotations }),
    status: o.status,
  };
  return (t = hibernating) => expiryDecision(a, t, timeline(a, t), now);
}
const hibernated = (until = '2026-11-24T14:00:00Z'): AssessmentStatus => ({
  phase: 'Hibernated',
  expiresAt: '2026-11-22T14:00:00Z',
  hibernatedUntil: until,
});

describe('expiryDecision', () => {
  it('before the deadline: Running, whatever onExpiry says', () => {
    expect(decideAt(at('13:59'))()).toEqual({ kind: 'Running' });
    expect(decideAt(at('13:59'))(deleting)).toEqual({ kind: 'Running' });
  });

  it('clock not started (OnFirstAccess, no arrival): Running', () => {
    expect(decideAt(at('23:00'), { spec: { startPolicy: 'OnFirstAccess' } })()).toEqual({ kind: 'Running' });
  });

  it('at the deadline with onExpiry Delete (the default): Delete', () => {
    expect(decideAt(at('14:00'))(deleting)).toEqual({ kind: 'Delete', reason: 'DeadlineReached' });
  });

  it('at the deadline with onExpiry Hibernate: Hibernate at 0 replicas until deadline + hibernateFor', () => {
    const d = decideAt(at('14:00'))();
    expect(d).toEqual({ kind: 'Hibernate', until: new Date('2026-11-24T14:00:00Z'), replicas: 0 });
    expect(nextWake(d)).toEqual(new Date('2026-11-24T14:00:00Z'));
  });

  it('hibernateFor defaults to 72h', () => {
    const d = decideAt(at('14:00'))(template({ onExpiry: 'Hibernate' }));
    expect(d).toMatchObject({ kind: 'Hibernate', until: new Date('2026-11-25T14:00:00Z') });
  });

  it('revoked: Delete, even with Hibernate, even while hibernated', () => {
    expect(decideAt(at('12:00'), { spec: { revoked: true } })()).toEqual({
      kind: 'Delete',
      reason: 'Revoked',
    });
    expect(decideAt(at('15:00'), { spec: { revoked: true }, status: hibernated() })()).toEqual({
      kind: 'Delete',
      reason: 'Revoked',
    });
  });

  it('hibernated: the stored end holds, even if the template or the duration changed since', () => {
    const d = decideAt(at('15:00'), { spec: { duration: '8h' }, status: hibernated() })(deleting);
    expect(d).toEqual({ kind: 'Hibernate', until: new Date('2026-11-24T14:00:00Z'), replicas: 0 });
    // And without a template at all.
    const a = { ...assessment(), status: hibernated() };
    expect(expiryDecision(a, undefined, undefined, at('15:00'))).toMatchObject({ kind: 'Hibernate' });
  });

  it('retention over: Delete (RetentionEnded), also when first seen after the whole retention', () => {
    expect(decideAt(at('14:00', '2026-11-24'), { status: hibernated() })()).toEqual({
      kind: 'Delete',
      reason: 'RetentionEnded',
    });
    // The operator was down from before the deadline until after deadline + hibernateFor.
    expect(decideAt(at('15:00', '2026-11-24'))()).toEqual({ kind: 'Delete', reason: 'RetentionEnded' });
  });

  it('a hibernated status without a readable end: Delete rather than keep data forever', () => {
    expect(decideAt(at('15:00'), { status: { phase: 'Hibernated' } })()).toEqual({
      kind: 'Delete',
      reason: 'RetentionEnded',
    });
    expect(decideAt(at('15:00'), { status: hibernated('soon') })()).toMatchObject({
      reason: 'RetentionEnded',
    });
  });

  it('reopened by staff: 1 replica until the window ends, then back to 0', () => {
    const annotations = { 'epreuve.dev/reopen-until': '2026-11-23T11:30:00Z' };
    const open = decideAt(at('10:00', '2026-11-23'), { status: hibernated(), annotations })();
    expect(open).toEqual({
      kind: 'Hibernate',
      until: new Date('2026-11-24T14:00:00Z'),
      replicas: 1,
      reopenedUntil: new Date('2026-11-23T11:30:00Z'),
    });
    expect(nextWake(open)).toEqual(new Date('2026-11-23T11:30:00Z'));
    const ended = decideAt(at('11:30', '2026-11-23'), { status: hibernated(), annotations })();
    expect(ended).toEqual({ kind: 'Hibernate', until: new Date('2026-11-24T14:00:00Z'), replicas: 0 });
  });

  it('a reopen window never outlives the retention, and a malformed one is ignored', () => {
    const late = { 'epreuve.dev/reopen-until': '2026-12-30T00:00:00Z' };
    expect(decideAt(at('10:00', '2026-11-24'), { status: hibernated(), annotations: late })()).toMatchObject({
      replicas: 1,
      reopenedUntil: new Date('2026-11-24T14:00:00Z'),
    });
    const bad = { 'epreuve.dev/reopen-until': 'tomorrow' };
    expect(decideAt(at('10:00', '2026-11-23'), { status: hibernated(), annotations: bad })()).toMatchObject({
      replicas: 0,
    });
  });

  it('a reopen annotation does not wake sandboxes before the deadline (they run anyway)', () => {
    const annotations = { 'epreuve.dev/reopen-until': '2026-11-22T13:00:00Z' };
    expect(decideAt(at('12:00'), { annotations })()).toEqual({ kind: 'Running' });
  });

  it('Delete and Running have no timed wake-up', () => {
    expect(nextWake({ kind: 'Running' })).toBeUndefined();
    expect(nextWake({ kind: 'Delete', reason: 'Revoked' })).toBeUndefined();
  });
});
