import { describe, expect, it } from 'vitest';
import type { AssessmentObject } from './assessments.ts';
import type { SubmissionObject } from './grading.ts';
import { dataApiUsage, integritySignals } from './signals.ts';

const assessment = (signals?: object): AssessmentObject =>
  ({
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'Assessment',
    metadata: { name: 'jane', namespace: 'team' },
    spec: { templateRef: { name: 't' }, candidate: { name: 'Jane', email: 'jane@example.com' } },
    status: { phase: 'Ready', ...(signals ? { signals } : {}) },
  }) as AssessmentObject;
const submission = (at: string) =>
  ({ spec: { task: 'x', submittedAt: at, answer: 'select 1' } }) as SubmissionObject;

describe('integritySignals', () => {
  it('words nothing when the gateway saw nothing', () => {
    expect(integritySignals(assessment(), [], null)).toEqual({
      firstConnectionAt: null,
      connections: 0,
      clientAddresses: [],
      clientAddressCount: 0,
      maxConcurrentSessions: 0,
      sandboxes: [],
      firstAnswerAt: null,
      secondsToFirstAnswer: null,
      dataApi: null,
      flags: [],
    });
  });

  it('flags several addresses, concurrent sessions and the first answer’s delay', () => {
    const s = integritySignals(
      assessment({
        firstConnectionAt: '2026-11-30T10:00:00Z',
        connections: 5,
        maxConcurrent: 2,
        clientAddresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4'],
        clientAddressCount: 3,
      }),
      [submission('2026-11-30T10:05:00Z'), submission('2026-11-30T10:00:40Z')],
      { available: true, calls: 12, firstCallAt: null, lastCallAt: null, errorResponses: 0 },
    );
    expect(s.firstAnswerAt).toBe('2026-11-30T10:00:40Z');
    expect(s.secondsToFirstAnswer).toBe(40);
    expect(s.flags).toEqual([
      { code: 'clientAddresses', value: 3 },
      { code: 'concurrentSessions', value: 2 },
      { code: 'firstAnswerAfter', value: 40 },
      { code: 'dataApiCalls', value: 12 },
    ]);
  });

  it('one address and one session at a time are not flagged; an answer before any connection has no delay', () => {
    const s = integritySignals(
      assessment({ firstConnectionAt: '2026-11-30T10:00:00Z', maxConcurrent: 1, clientAddressCount: 1 }),
      [submission('2026-11-30T09:59:00Z')],
      { available: false, calls: 0, firstCallAt: null, lastCallAt: null, errorResponses: 0 },
    );
    expect(s.secondsToFirstAnswer).toBeNull();
    expect(s.flags).toEqual([]);
  });
});

describe('dataApiUsage', () => {
  it('counts calls from the sequence numbers, even once the bounded log dropped the oldest', () => {
    const u = dataApiUsage([
      {
        sandbox: 'source',
        available: true,
        items: [
          { seq: 41, time: '2026-11-30T10:01:00Z', status: 200 },
          { seq: 42, time: '2026-11-30T10:02:00Z', status: 503 },
        ],
      },
      { sandbox: 'other', available: true, items: [{ seq: 1, time: '2026-11-30T10:00:00Z', status: 429 }] },
    ]);
    expect(u).toEqual({
      available: true,
      calls: 43,
      firstCallAt: '2026-11-30T10:00:00Z',
      lastCallAt: '2026-11-30T10:02:00Z',
      errorResponses: 2,
    });
  });

  it('says when a data API did not answer', () => {
    expect(
      dataApiUsage([
        { sandbox: 'a', available: false, items: [] },
        { sandbox: 'b', available: true, items: [] },
      ]),
    ).toMatchObject({ available: false, calls: 0, firstCallAt: null });
    expect(dataApiUsage([]).available).toBe(false);
  });
});
