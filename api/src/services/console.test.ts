import { describe, expect, it } from 'vitest';
import type { AssessmentObject } from './assessments.ts';
import { ConsoleFailed, ConsoleService, result } from './console.ts';
import { Conflict, Invalid, Misconfigured, NotFound, Unavailable } from './errors.ts';
import type { ConsoleOutcome, GraderClient } from './grader-client.ts';

const ran: ConsoleOutcome = {
  kind: 'ran',
  result: { columns: ['n'], rows: [[1]], rowCount: 1, truncated: false, command: 'SELECT', durationMs: 3 },
};

const assessment = (status: object = {}, spec: object = {}) =>
  ({
    metadata: { name: 'jane', namespace: 'hiring', uid: 'u1' },
    spec: { templateRef: { name: 't' }, revoked: false, ...spec },
    status: {
      phase: 'Ready',
      startedAt: new Date(Date.now() - 60_000).toISOString(),
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      sandboxes: [
        { name: 'warehouse', kind: 'postgres', ready: true },
        { name: 'events', kind: 'mongo', ready: false },
      ],
      ...status,
    },
  }) as unknown as AssessmentObject;

const template = { spec: { duration: '2h' } } as never;

/** Started by the candidate `ago` ms ago (OnFirstAccess), before the operator recorded the clock. */
const arrived = (ago: number) => {
  const a = assessment({ startedAt: undefined, expiresAt: undefined }, { startPolicy: 'OnFirstAccess' });
  a.metadata.annotations = {
    'epreuve.dev/candidate-arrived-at': new Date(Date.now() - ago).toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  return a;
};

/** A service over a fake grader that answers `outcomes` in turn and records the calls. */
function service(...outcomes: ConsoleOutcome[]) {
  const calls: Array<{ ns: string; body: unknown }> = [];
  const forgotten: string[] = [];
  const grader = {
    run: async (ns: string, body: unknown) => {
      calls.push({ ns, body });
      return outcomes.shift() ?? ran;
    },
  } as unknown as GraderClient;
  return { s: new ConsoleService(grader, (ns) => forgotten.push(ns)), calls, forgotten };
}

describe('ConsoleService.run', () => {
  it('relays the statement to the grader of the candidate namespace and returns its result', async () => {
    const { s, calls } = service();
    expect(await s.run(assessment(), { sandbox: 'warehouse', query: 'SELECT 1' }, template)).toEqual(
      (ran as { result: unknown }).result,
    );
    expect(calls).toHaveLength(1);
    expect(calls[0]!.ns).toMatch(/^epreuve-jane-/);
  });

  it('is refused, without calling the grader, before Start, after the end, once revoked, while not ready', async () => {
    const cases: Array<[AssessmentObject, RegExp]> = [
      [assessment({ startedAt: undefined }), /has not started/],
      [assessment({ expiresAt: new Date(Date.now() - 3_600_000).toISOString() }), /ended/],
      [assessment({}, { revoked: true }), /revoked/],
      [assessment({ phase: 'Provisioning' }), /not ready/],
      // A red-team finding: started (the arrival annotation) with no end recorded by the operator
      // (behind, restarting) left the console and submissions open days past a 2-hour test.
      [arrived(3 * 24 * 3_600_000), /ended/],
    ];
    for (const [a, message] of cases) {
      const { s, calls } = service();
      await expect(s.run(a, { sandbox: 'warehouse', query: 'SELECT 1' }, template)).rejects.toThrow(message);
      await expect(s.run(a, { sandbox: 'warehouse', query: 'SELECT 1' }, template)).rejects.toBeInstanceOf(
        Conflict,
      );
      expect(calls).toHaveLength(0);
    }
  });

  it('works the end out itself while the operator has not recorded it, and waits without a template', async () => {
    const { s, calls } = service();
    await s.run(arrived(60_000), { sandbox: 'warehouse', query: 'SELECT 1' }, template);
    expect(calls).toHaveLength(1);
    await expect(
      s.run(arrived(60_000), { sandbox: 'warehouse', query: 'SELECT 1' }, undefined),
    ).rejects.toThrow(/clock is being started/);
    expect(calls).toHaveLength(1);
  });

  it('names the sandbox or the field at fault', async () => {
    const { s } = service();
    await expect(s.run(assessment(), { sandbox: 'nope', query: 'SELECT 1' }, template)).rejects.toMatchObject(
      {
        constructor: NotFound,
        field: 'sandbox',
      },
    );
    await expect(
      s.run(assessment(), { sandbox: 'warehouse', pipeline: '[]', collection: 'c' }, template),
    ).rejects.toMatchObject({
      constructor: Invalid,
      field: 'pipeline',
    });
    await expect(
      s.run(assessment(), { sandbox: 'events', query: 'SELECT 1' }, template),
    ).rejects.toMatchObject({
      constructor: Invalid,
      field: 'query',
    });
    // The right kind, but not up yet.
    await expect(
      s.run(assessment(), { sandbox: 'events', pipeline: '[]', collection: 'c' }, template),
    ).rejects.toThrow(/not ready/);
  });

  it('reads the grader token again after a 401, once', async () => {
    const { s, calls, forgotten } = service({ kind: 'refused', status: 401, reason: 'invalid credentials' });
    await s.run(assessment(), { sandbox: 'warehouse', query: 'SELECT 1' }, template);
    expect(calls).toHaveLength(2);
    expect(forgotten).toHaveLength(1);
  });

  it('counts runs per assessment', () => {
    const { s } = service();
    expect(s.count(assessment())).toBe(1);
    expect(s.count(assessment())).toBe(2);
  });
});

describe('result', () => {
  it('turns each outcome into the result or the error the route answers', () => {
    expect(() =>
      result({ kind: 'failed', reason: 'SqlError', message: 'syntax error', position: 8 }),
    ).toThrow(ConsoleFailed);
    try {
      result({ kind: 'failed', reason: 'SqlError', message: 'syntax error', position: 8 });
    } catch (err) {
      expect((err as ConsoleFailed).failure).toEqual({ reason: 'SqlError', position: 8 });
    }
    expect(() => result({ kind: 'unavailable', reason: 'busy', retryAfterSeconds: 2 })).toThrow(Unavailable);
    expect(() => result({ kind: 'refused', status: 400, reason: 'bad' })).toThrow(Misconfigured);
  });
});
