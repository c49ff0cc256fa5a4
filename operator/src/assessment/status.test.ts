import { durationProblem, timeline } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import { assessment, template } from './fixtures.test-helpers.ts';
import { nextStatus, type ObservedWorkload, type Outcome } from './status.ts';

const now = new Date('2026-11-22T10:05:00Z');
const sts = (ready: number): ObservedWorkload => ({
  workloadKind: 'StatefulSet',
  current: { kind: 'StatefulSet', status: { readyReplicas: ready } } as unknown as KubeObject,
});
const deploy = (available: number): ObservedWorkload => ({
  workloadKind: 'Deployment',
  current: { kind: 'Deployment', status: { availableReplicas: available } } as unknown as KubeObject,
});
const job = (status: object) => ({ kind: 'Job', status }) as unknown as KubeObject;
const applied = (ready: boolean, seed: object = { succeeded: 1 }): Outcome => ({
  kind: 'Applied',
  workloads: { warehouse: sts(ready ? 1 : 0), events: sts(1), source: deploy(1) },
  seedJob: job(seed),
  seedNeeded: true,
});

describe('timeline', () => {
  it('starts the clock at creation for Immediate', () => {
    const t = timeline(assessment(), template());
    expect(t.startedAt?.toISOString()).toBe('2026-11-22T10:00:00.000Z');
    expect(t.expiresAt?.toISOString()).toBe('2026-11-22T14:00:00.000Z');
  });
  it('waits for the arrival annotation for OnFirstAccess', () => {
    expect(timeline(assessment({ startPolicy: 'OnFirstAccess' }), template()).expiresAt).toBeUndefined();
    const arrived = assessment(
      { startPolicy: 'OnFirstAccess', duration: '90m' },
      { annotations: { 'epreuve.dev/candidate-arrived-at': '2026-11-22T12:00:00Z' } },
    );
    expect(timeline(arrived, template()).expiresAt?.toISOString()).toBe('2026-11-22T13:30:00.000Z');
  });
  it('moves the deadline when the duration is extended', () => {
    expect(timeline(assessment({ duration: '6h' }), template()).expiresAt?.toISOString()).toBe(
      '2026-11-22T16:00:00.000Z',
    );
  });
  it('refuses a duration above the template maximum', () => {
    expect(durationProblem(assessment({ duration: '9h' }), template())).toMatch(
      /9h exceeds the template's maxDuration 8h/,
    );
    expect(durationProblem(assessment({ duration: '8h' }), template())).toBeUndefined();
  });
});

describe('nextStatus', () => {
  const a = assessment();
  const t = template();
  const times = timeline(a, t);

  it('is Pending with TemplateNotFound when the template is missing', () => {
    const s = nextStatus(a, undefined, { kind: 'TemplateNotFound' }, undefined, now);
    expect(s.phase).toBe('Pending');
    expect(s.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'TemplateNotFound',
    });
  });

  it('is Provisioning and says what it waits for', () => {
    const s = nextStatus(a, t, applied(false), times, now);
    expect(s.phase).toBe('Provisioning');
    expect(s.conditions?.find((c) => c.type === 'Ready')?.message).toBe('waiting for warehouse');
    expect(s.sandboxes?.find((x) => x.name === 'warehouse')).toMatchObject({
      ready: false,
      port: 5432,
      secretName: 'warehouse-credentials',
    });
    expect(s.expiresAt).toBe('2026-11-22T14:00:00Z');
  });

  it('says the namespace and sandboxes of a hibernated assessment whose applying pass lost its status write', () => {
    // The pass that applied the namespace lost its write to a conflict; the next one hibernates.
    const until = new Date('2026-11-25T14:00:00Z');
    const s = nextStatus(a, t, { kind: 'Hibernated', until }, times, now);
    expect(s.phase).toBe('Hibernated');
    expect(s.namespace).toBe(nextStatus(a, t, applied(true), times, now).namespace);
    expect(s.namespace).toBeTruthy();
    expect(s.sandboxes?.map((x) => [x.name, x.ready])).toEqual([
      ['warehouse', false],
      ['events', false],
      ['source', false],
    ]);
    // A namespace already said is kept (a pooled one is not the name-derived one).
    const pooled = nextStatus(
      { ...a, status: { phase: 'Ready', namespace: 'epreuve-pool-abc' } },
      t,
      { kind: 'Hibernated', until },
      times,
      now,
    );
    expect(pooled.namespace).toBe('epreuve-pool-abc');
  });

  it('is Ready once every workload is ready and the seed Job succeeded, and keeps readyAt', () => {
    const s = nextStatus(a, t, applied(true), times, now);
    expect(s.phase).toBe('Ready');
    expect(s.readyAt).toBe('2026-11-22T10:05:00Z');
    const later = nextStatus({ ...a, status: s }, t, applied(true), times, new Date('2026-11-22T11:00:00Z'));
    expect(later).toEqual(s);
  });

  it('times each provisioning step once, to the millisecond, the seed by its Job completionTime', () => {
    const at = (iso: string) => new Date(iso);
    const grader = (available: number) => ({ grader: deploy(available) });
    // Applied, databases still starting, seed running.
    let s = nextStatus(
      a,
      t,
      { ...applied(false, { active: 1 }), ...grader(0) },
      times,
      at('2026-11-22T10:00:01.250Z'),
    );
    expect(s.provisioning).toEqual({ appliedAt: '2026-11-22T10:00:01.250Z' });
    // Every sandbox answers; the seed still runs and the grader is not up.
    s = nextStatus(
      { ...a, status: s },
      t,
      { ...applied(true, { active: 1 }), ...grader(0) },
      times,
      at('2026-11-22T10:00:04.500Z'),
    );
    expect(s.provisioning).toEqual({
      appliedAt: '2026-11-22T10:00:01.250Z',
      sandboxesReadyAt: '2026-11-22T10:00:04.500Z',
    });
    expect(s.phase).toBe('Provisioning');
    // The seed finished (its Job says when) and the grader is available: Ready.
    const done = { ...applied(true, { succeeded: 1, completionTime: '2026-11-22T10:00:09Z' }), ...grader(1) };
    s = nextStatus({ ...a, status: s }, t, done, times, at('2026-11-22T10:00:09.800Z'));
    expect(s.phase).toBe('Ready');
    expect(s.provisioning).toEqual({
      appliedAt: '2026-11-22T10:00:01.250Z',
      sandboxesReadyAt: '2026-11-22T10:00:04.500Z',
      seededAt: '2026-11-22T10:00:09Z',
      graderReadyAt: '2026-11-22T10:00:09.800Z',
    });
    // Set once: a later pass, or a sandbox restarting, changes none of them (and writes nothing).
    const later = nextStatus({ ...a, status: s }, t, done, times, at('2026-11-22T11:00:00Z'));
    expect(later).toEqual(s);
    const restarted = nextStatus(
      { ...a, status: s },
      t,
      { ...applied(false), ...grader(1) },
      times,
      at('2026-11-22T11:00:00Z'),
    );
    expect(restarted.provisioning).toEqual(s.provisioning);
  });

  it('times the seed by the pass that saw it when its Job has no completionTime, and not at all without a seed', () => {
    const s = nextStatus(a, t, applied(true, { succeeded: 1 }), times, now);
    expect(s.provisioning?.seededAt).toBe('2026-11-22T10:05:00.000Z');
    const unseededOutcome: Outcome = {
      ...(applied(true) as Extract<Outcome, { kind: 'Applied' }>),
      seedJob: undefined,
      seedNeeded: false,
    };
    const unseeded = nextStatus(a, t, unseededOutcome, times, now);
    expect(unseeded.provisioning).toEqual({
      appliedAt: '2026-11-22T10:05:00.000Z',
      sandboxesReadyAt: '2026-11-22T10:05:00.000Z',
    });
    // Nothing is timed before anything is applied.
    expect(
      nextStatus(a, undefined, { kind: 'TemplateNotFound' }, undefined, now).provisioning,
    ).toBeUndefined();
  });

  it('judges a Deployment by available replicas and a StatefulSet by ready ones', () => {
    const readyButUnavailable: ObservedWorkload = {
      workloadKind: 'Deployment',
      current: { kind: 'Deployment', status: { readyReplicas: 1 } } as unknown as KubeObject,
    };
    const outcome: Outcome = {
      kind: 'Applied',
      workloads: { warehouse: sts(1), events: sts(1), source: readyButUnavailable },
      seedJob: job({ succeeded: 1 }),
      seedNeeded: true,
    };
    const s = nextStatus(a, t, outcome, times, now);
    expect(s.sandboxes?.find((x) => x.name === 'source')?.ready).toBe(false);
    expect(s.sandboxes?.find((x) => x.name === 'warehouse')?.ready).toBe(true);
  });

  it('waits for the seed Job even when databases are up', () => {
    const s = nextStatus(a, t, applied(true, { active: 1 }), times, now);
    expect(s.conditions?.find((c) => c.type === 'Ready')?.message).toBe('seeding data');
  });

  it('fails with SeedJobFailed when seeding failed', () => {
    const s = nextStatus(
      a,
      t,
      applied(true, { conditions: [{ type: 'Failed', status: 'True' }] }),
      times,
      now,
    );
    expect(s.phase).toBe('Failed');
    expect(s.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('SeedJobFailed');
  });

  describe('a claimed warm pool namespace', () => {
    const placement = {
      namespace: 'epreuve-pool-abcdef-12345',
      pool: { template: 'data-engineer', claimedAt: '2026-11-22T10:00:01Z' },
    };
    const claimed = (rotate: object | undefined): Outcome => ({
      ...(applied(true) as Extract<Outcome, { kind: 'Applied' }>),
      rotateNeeded: true,
      rotateJob: rotate && job(rotate),
    });

    it('says where it lives and waits for the credential rotation', () => {
      const s = nextStatus(a, t, claimed(undefined), times, now, placement);
      expect(s).toMatchObject({
        phase: 'Provisioning',
        namespace: placement.namespace,
        pool: placement.pool,
      });
      expect(s.conditions?.find((c) => c.type === 'Ready')?.message).toBe('rotating credentials');
      expect(s.sandboxes?.[0]?.host).toBe(`warehouse.${placement.namespace}.svc`);
      expect(nextStatus(a, t, claimed({ succeeded: 1 }), times, now, placement).phase).toBe('Ready');
    });

    it('is Ready without a Job when the operator rotated in place', () => {
      const inPlace: Outcome = { ...claimed(undefined), rotatedInPlace: true } as Outcome;
      expect(nextStatus(a, t, inPlace, times, now, placement).phase).toBe('Ready');
    });

    it('fails with CredentialRotationFailed when the rotate Job failed', () => {
      const s = nextStatus(
        a,
        t,
        claimed({ conditions: [{ type: 'Failed', status: 'True' }] }),
        times,
        now,
        placement,
      );
      expect(s.phase).toBe('Failed');
      expect(s.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('CredentialRotationFailed');
    });
  });

  it('changes lastTransitionTime only when a condition flips', () => {
    const first = nextStatus(a, t, applied(false), times, now);
    const same = nextStatus(
      { ...a, status: first },
      t,
      applied(false),
      times,
      new Date('2026-11-22T10:06:00Z'),
    );
    expect(same.conditions).toEqual(first.conditions);
    const flipped = nextStatus(
      { ...a, status: first },
      t,
      applied(true),
      times,
      new Date('2026-11-22T10:07:00Z'),
    );
    const ready = flipped.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.lastTransitionTime).toBe('2026-11-22T10:07:00Z');
    expect(flipped.conditions?.find((c) => c.type === 'Provisioned')?.lastTransitionTime).toBe(
      '2026-11-22T10:05:00Z',
    );
  });

  it('records expiry and drops sandbox endpoints', () => {
    const s = nextStatus(a, t, { kind: 'Expired', reason: 'Revoked' }, times, now);
    expect(s.phase).toBe('Expired');
    expect(s.sandboxes).toBeUndefined();
    expect(s.conditions?.find((c) => c.type === 'Expired')).toMatchObject({
      status: 'True',
      reason: 'Revoked',
    });
  });
});

describe('nextStatus host key', () => {
  const a = assessment();
  it('stores the key it is given when the status has none, and keeps a stored one', () => {
    const drawn = nextStatus(
      a,
      undefined,
      { kind: 'TemplateNotFound' },
      undefined,
      now,
      undefined,
      'abcdefghijklmnop',
    );
    expect(drawn.hostKey).toBe('abcdefghijklmnop');
    const kept = nextStatus(
      { ...a, status: drawn },
      undefined,
      { kind: 'TemplateNotFound' },
      undefined,
      now,
      undefined,
      'qqqqqqqqqqqqqqqq',
    );
    expect(kept.hostKey).toBe('abcdefghijklmnop');
  });
});
