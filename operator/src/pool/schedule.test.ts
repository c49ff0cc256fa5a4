import { assessmentTemplateSpec, type Pool } from '@epreuve/crds';
import { describe, expect, it } from 'vitest';
import { template } from '../assessment/fixtures.test-helpers.ts';
import { type Member, planPool } from './members.ts';
import { isOpen, localTime, nextSizeChange, poolSizeAt } from './schedule.ts';

// Office hours in Paris: 3 ready namespaces on weekdays 08:00–18:00, none outside (max 1).
const officeHours: Pool = {
  min: 0,
  max: 1,
  timeZone: 'Europe/Paris',
  schedule: [{ days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], from: '08:00', to: '18:00', min: 3, max: 5 }],
};
// 2026-11-30 is a Monday; Paris is UTC+1 in winter, UTC+2 in summer.
const at = (iso: string) => new Date(iso);

describe('poolSizeAt', () => {
  it.each([
    [
      'Monday 08:30 in Paris',
      '2026-11-30T07:30:00Z',
      { min: 3, max: 5, window: 'Mon,Tue,Wed,Thu,Fri 08:00–18:00' },
    ],
    ['Monday 07:59 in Paris', '2026-11-30T06:59:00Z', { min: 0, max: 1 }],
    ['Monday 18:00 in Paris (closed at to)', '2026-11-30T17:00:00Z', { min: 0, max: 1 }],
    ['Saturday noon', '2026-12-05T11:00:00Z', { min: 0, max: 1 }],
  ])('%s', (_label, iso, size) => expect(poolSizeAt(officeHours, at(iso))).toEqual(size));

  it('follows daylight saving time: 08:00 in Paris is 06:00 UTC in summer', () => {
    expect(localTime(at('2026-03-30T06:00:00Z'), 'Europe/Paris')).toEqual({ day: 0, minute: 480 });
    expect(poolSizeAt(officeHours, at('2026-03-30T06:00:00Z')).min).toBe(3);
    expect(poolSizeAt(officeHours, at('2026-03-30T05:59:00Z')).min).toBe(0);
  });

  it('a window past midnight belongs to the day it opened', () => {
    const night = { days: ['Fri' as const], from: '22:00', to: '06:00', min: 2 };
    expect(isOpen(night, { day: 4, minute: 23 * 60 })).toBe(true); // Friday 23:00
    expect(isOpen(night, { day: 5, minute: 5 * 60 })).toBe(true); // Saturday 05:00
    expect(isOpen(night, { day: 5, minute: 6 * 60 })).toBe(false); // Saturday 06:00
    expect(isOpen(night, { day: 3, minute: 23 * 60 })).toBe(false); // Thursday 23:00
    expect(isOpen(night, { day: 0, minute: 60 })).toBe(false); // Monday 01:00 (Sunday not listed)
  });

  it('where windows overlap, the first listed wins', () => {
    const pool: Pool = {
      min: 0,
      timeZone: 'UTC',
      schedule: [
        { days: ['Mon'], from: '09:00', to: '12:00', min: 4 },
        { days: ['Mon'], from: '08:00', to: '18:00', min: 2 },
      ],
    };
    expect(poolSizeAt(pool, at('2026-11-30T10:00:00Z')).min).toBe(4);
    expect(poolSizeAt(pool, at('2026-11-30T13:00:00Z')).min).toBe(2);
  });

  it('ignores a schedule in a time zone the runtime does not know', () =>
    expect(poolSizeAt({ ...officeHours, timeZone: 'Mars/Olympus' }, at('2026-11-30T07:30:00Z'))).toEqual({
      min: 0,
      max: 1,
    }));
});

describe('nextSizeChange', () => {
  it('is the next opening or closing, to the minute', () => {
    expect(nextSizeChange(officeHours, at('2026-11-30T06:00:30Z'))).toEqual(at('2026-11-30T07:00:00Z'));
    expect(nextSizeChange(officeHours, at('2026-11-30T08:00:00Z'))).toEqual(at('2026-11-30T17:00:00Z'));
  });

  it('is undefined without a schedule, or without a change within a day', () => {
    expect(nextSizeChange({ min: 2 }, at('2026-11-30T08:00:00Z'))).toBeUndefined();
    // Friday 18:00 in Paris: the next opening is Monday, more than a day away.
    expect(nextSizeChange(officeHours, at('2026-12-04T17:30:00Z'))).toBeUndefined();
  });
});

describe('planPool with a schedule', () => {
  const NOW = at('2026-11-30T07:30:00Z'); // Monday 08:30 in Paris: the window is open
  const ready = (name: string): Member => ({
    name,
    createdAt: NOW.getTime() - 60_000,
    stale: false,
    observed: 'ready',
    labelledReady: true,
  });
  const pooled = template({ pool: officeHours });

  it("builds up to the open window's min, says which window, and comes back when it closes", () => {
    const plan = planPool(pooled, [ready('a')], 0, NOW);
    expect(plan.create).toBe(2);
    expect(plan.status).toMatchObject({
      desired: 3,
      window: 'Mon,Tue,Wed,Thu,Fri 08:00–18:00',
      nextChange: '2026-11-30T17:00:00Z',
    });
    expect(plan.requeueAfterMs).toBe(9.5 * 3600_000);
  });

  it("after hours, the pool's own max drains the members above it", () => {
    const evening = at('2026-11-30T17:30:00Z');
    const plan = planPool(pooled, [ready('a'), ready('b'), ready('c')], 0, evening);
    expect(plan.remove.map((r) => r.reason)).toEqual(['OverMax', 'OverMax']);
    expect(plan.create).toBe(0);
    expect(plan.status).toMatchObject({ desired: 0, ready: 1 });
    expect(plan.status.window).toBeUndefined();
  });

  it('says when the time zone is unknown', () => {
    const plan = planPool(template({ pool: { ...officeHours, timeZone: 'Mars/Olympus' } }), [], 0, NOW);
    expect(plan.status.message).toBe(
      'unknown timeZone Mars/Olympus: the schedule is ignored, the pool keeps min 0',
    );
  });
});

describe('the schedule in the template schema', () => {
  const spec = (schedule: unknown[], extra: Record<string, unknown> = {}) => ({
    title: 'T',
    sandboxes: [{ name: 'db', postgres: { dataset: 'retail@1' } }],
    pool: { min: 0, schedule, ...extra },
  });
  const issues = (s: unknown) => {
    const r = assessmentTemplateSpec.safeParse(s);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts office hours; the time zone may be left out (UTC)', () => {
    const r = assessmentTemplateSpec.parse(spec([{ days: ['Mon'], from: '08:00', to: '18:00', min: 2 }]));
    expect(r.pool?.schedule?.[0]).toEqual({ days: ['Mon'], from: '08:00', to: '18:00', min: 2 });
    expect(poolSizeAt(r.pool!, at('2026-11-30T08:00:00Z')).min).toBe(2);
  });

  it.each([
    [
      'a time that is not HH:MM',
      { days: ['Mon'], from: '8:00', to: '18:00', min: 1 },
      'pool.schedule.0.from',
    ],
    [
      'a day that is not a day',
      { days: ['Monday'], from: '08:00', to: '18:00', min: 1 },
      'pool.schedule.0.days.0',
    ],
    ['no day', { days: [], from: '08:00', to: '18:00', min: 1 }, 'pool.schedule.0.days'],
  ])('refuses %s, naming the field', (_l, window, field) =>
    expect(issues(spec([window]))[0]).toMatch(new RegExp(`^${field.replaceAll('.', '\\.')}: `)),
  );

  it('refuses a time zone that is not an IANA name, naming it', () =>
    expect(issues(spec([], { timeZone: 'Paris time' }))).toEqual([
      'pool.timeZone: an IANA time zone name such as Europe/Paris',
    ]));
});
