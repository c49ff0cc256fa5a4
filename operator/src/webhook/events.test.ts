import type { Assessment, Submission } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import { dueEvents } from './events.ts';

type A = Assessment & KubeObject;
type S = Submission & KubeObject;
const since = new Date('2026-01-01T00:00:00Z');

const asmt = (
  status: A['status'],
  extra: Partial<A['spec']> = {},
  annotations?: Record<string, string>,
): A => ({
  apiVersion: 'epreuve.dev/v1alpha1',
  kind: 'Assessment',
  metadata: { name: 'jane', namespace: 'team-a', uid: 'uid-a', annotations },
  spec: {
    templateRef: { name: 'data-engineer' },
    candidate: { name: 'Jane Doe', email: 'jane@example.com' },
    startPolicy: 'Immediate',
    ...extra,
  },
  status,
});

const sub = (graded: boolean): S => ({
  apiVersion: 'epreuve.dev/v1alpha1',
  kind: 'Submission',
  metadata: { name: 'jane-top-1', namespace: 'team-a', uid: 'uid-s' },
  spec: {
    assessmentRef: { name: 'jane' },
    task: 'top',
    answer: 'select 1',
    submittedAt: '2026-02-01T10:00:00Z',
  },
  status: graded
    ? { graded: true, pass: true, points: 10, gradedAt: '2026-02-01T10:00:01Z' }
    : { graded: false },
});

const expired = (reason: string) => ({
  type: 'Expired',
  status: 'True' as const,
  reason,
  message: '',
  lastTransitionTime: '2026-02-01T12:00:00Z',
});

describe('webhook events', () => {
  it('a running assessment calls for started and ready, as CloudEvents without secrets or email', () => {
    const due = dueEvents(
      'team-a',
      [
        asmt({
          phase: 'Ready',
          startedAt: '2026-02-01T09:00:00Z',
          readyAt: '2026-02-01T09:00:05Z',
          expiresAt: '2026-02-01T13:00:00Z',
        }),
      ],
      [],
      since,
    );
    expect(due.map((d) => d.event)).toEqual(['started', 'ready']);
    expect(due[1]!.cloudEvent).toEqual({
      specversion: '1.0',
      id: 'uid-a.ready',
      source: '/teams/team-a',
      type: 'dev.epreuve.assessment.ready.v1',
      subject: 'assessments/jane',
      time: '2026-02-01T09:00:05Z',
      datacontenttype: 'application/json',
      data: {
        team: 'team-a',
        assessment: 'jane',
        template: 'data-engineer',
        expiresAt: '2026-02-01T13:00:00Z',
      },
    });
    expect(JSON.stringify(due)).not.toContain('jane@example.com');
  });

  it('tells expired from revoked', () => {
    const e = dueEvents(
      'team-a',
      [asmt({ phase: 'Expired', conditions: [expired('DeadlineReached')] })],
      [],
      since,
    );
    expect(e.map((d) => d.event)).toEqual(['expired']);
    const r = dueEvents(
      'team-a',
      [asmt({ phase: 'Expired', conditions: [expired('Revoked')] }, { revoked: true })],
      [],
      since,
    );
    expect(r.map((d) => [d.event, d.cloudEvent.time])).toEqual([['revoked', '2026-02-01T12:00:00Z']]);
    // Hibernated at the deadline (onExpiry: Hibernate): expired for the candidate, said once.
    const h = dueEvents(
      'team-a',
      [
        asmt({
          phase: 'Hibernated',
          expiresAt: '2026-02-01T12:00:00Z',
          hibernatedUntil: '2026-02-04T12:00:00Z',
        }),
      ],
      [],
      since,
    );
    expect(h.map((d) => [d.event, d.cloudEvent.time, d.cloudEvent.id])).toEqual([
      ['expired', '2026-02-01T12:00:00Z', expect.stringMatching(/\.expired$/)],
    ]);
    expect(h[0]!.cloudEvent.data).toMatchObject({ hibernatedUntil: '2026-02-04T12:00:00Z' });
    // Asked but not yet acted on by the operator: not yet.
    expect(dueEvents('team-a', [asmt({ phase: 'Ready' }, { revoked: true })], [], since)).toEqual([]);
  });

  it('a submission calls for submitted, then graded with its result', () => {
    expect(dueEvents('team-a', [asmt({})], [sub(false)], since).map((d) => d.event)).toEqual(['submitted']);
    const graded = dueEvents('team-a', [asmt({})], [sub(true)], since);
    expect(graded.map((d) => d.cloudEvent.id)).toEqual(['uid-s.submitted', 'uid-s.graded']);
    expect(graded[1]!.cloudEvent.data).toMatchObject({
      task: 'top',
      pass: true,
      points: 10,
      template: 'data-engineer',
    });
    expect(graded[1]!.cloudEvent.subject).toBe('assessments/jane/submissions/jane-top-1');
  });

  it('leaves out what the object is marked with, and what happened before the endpoint existed', () => {
    const a = asmt(
      { startedAt: '2026-02-01T09:00:00Z', readyAt: '2026-02-01T09:00:05Z' },
      {},
      {
        'epreuve.dev/webhook-sent': 'started',
      },
    );
    expect(dueEvents('team-a', [a], [], since).map((d) => d.event)).toEqual(['ready']);
    expect(dueEvents('team-a', [a], [], new Date('2026-03-01T00:00:00Z'))).toEqual([]);
  });
});
