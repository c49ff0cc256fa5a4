import { afterEach, describe, expect, it, vi } from 'vitest';
import { toSessionView } from '../views.ts';
import type { AssessmentObject } from './assessments.ts';
import { CandidateSessions, refusalMessage } from './candidates.ts';

const assessment = (spec: object, status: object = {}) =>
  ({ spec: { templateRef: { name: 't' }, revoked: false, ...spec }, status }) as unknown as AssessmentObject;

describe('refusalMessage', () => {
  const now = new Date('2026-11-30T12:00:00Z');
  it.each([
    [
      'revoked',
      assessment({ revoked: true }),
      true,
      'this assessment was revoked',
      'cette évaluation a été révoquée',
    ],
    [
      'ended',
      assessment({}, { expiresAt: '2026-11-30T11:00:00Z' }),
      true,
      'this assessment ended at 2026-11-30T11:00:00Z',
      'cette évaluation est terminée (fin : 2026-11-30T11:00:00Z)',
    ],
    [
      'not started',
      assessment({}),
      false,
      'this assessment has not started: press Start first',
      'cette évaluation n’a pas commencé : appuyez d’abord sur Commencer',
    ],
  ])('says why (%s) in English and French', (_, a, started, en, fr) => {
    expect(refusalMessage(a, now, started)).toEqual({ en, fr });
  });
});

describe('CandidateSessions.session through the gateway', () => {
  const gateway = { domain: 'sandbox.example.com', port: 443, certTrusted: true };
  const sessions = new CandidateSessions({
    client: { get: async () => undefined } as never,
    store: { templateOf: () => undefined } as never,
    grading: {} as never,
    links: {} as never,
    gateway,
  });
  const withSandboxes = (status: object) =>
    ({
      metadata: { name: 'jane-doe', namespace: 'hiring' },
      spec: { templateRef: { name: 't' }, startPolicy: 'Immediate' },
      status: {
        phase: 'Ready',
        namespace: 'epreuve-jane-doe-abcde',
        sandboxes: [{ name: 'warehouse', kind: 'postgres', ready: true, host: 'w.svc', port: 5432 }],
        ...status,
      },
    }) as unknown as AssessmentObject;

  it('shows each sandbox under the host key the operator drew', async () => {
    const s = await sessions.session(withSandboxes({ hostKey: 'k7qz2mxw4bn5rt6y' }), 'en');
    expect(s.sandboxes.map((x) => x.endpoint.host)).toEqual([
      'warehouse-k7qz2mxw4bn5rt6y.sandbox.example.com',
    ]);
  });

  it('lists no sandbox before the operator drew a key, rather than a name the gateway does not serve', async () => {
    const s = await sessions.session(withSandboxes({}), 'en');
    expect(s.sandboxes).toEqual([]);
  });
});

describe('CandidateSessions.session, built once while nothing it reads changed', () => {
  const secretData = (password: string) => ({
    data: { database: btoa('sandbox'), username: btoa('candidate'), password: btoa(password) },
  });
  let password = 'p1';
  const reads: string[] = [];
  let template: object = { spec: { tasks: [{ id: 'q1', sandbox: 'warehouse', points: 5, title: 'Q1' }] } };
  const sessions = new CandidateSessions({
    client: {
      get: async (_kind: unknown, ns: string, name: string) => {
        reads.push(`${ns}/${name}`);
        return secretData(password);
      },
    } as never,
    store: { templateOf: () => template } as never,
    grading: {} as never,
    links: {} as never,
  });
  const ready = (expiresAt: string) =>
    ({
      metadata: { name: 'jane-doe', namespace: 'hiring' },
      spec: { templateRef: { name: 't' }, startPolicy: 'Immediate', candidate: { name: 'Jane Doe' } },
      status: {
        phase: 'Ready',
        namespace: 'epreuve-jane-doe-abcde',
        startedAt: '2026-12-01T08:00:00Z',
        expiresAt,
        sandboxes: [
          {
            name: 'warehouse',
            kind: 'postgres',
            ready: true,
            host: 'w.svc',
            port: 5432,
            secretName: 'w-creds',
          },
        ],
      },
    }) as unknown as AssessmentObject;
  afterEach(() => vi.useRealTimers());

  it('returns the same session for the same objects; a new assessment object, template, language or credentials builds anew', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-12-01T09:00:00Z') });
    const a = ready('2026-12-01T12:00:00Z');
    const first = await sessions.session(a, 'en');
    expect(first.sandboxes[0]!.credentials).toMatchObject({ password: 'p1' });
    expect(await sessions.session(a, 'en')).toBe(first);
    expect(reads).toEqual(['epreuve-jane-doe-abcde/w-creds']); // the credentials cache, as before
    // The view of one session object is built once; the time left is worked out per call.
    const view = toSessionView(first, Date.parse('2026-12-01T11:00:00Z'));
    expect(view.timeLeftSeconds).toBe(3600);
    expect(toSessionView(first, Date.parse('2026-12-01T11:59:00Z'))).toEqual({
      ...view,
      timeLeftSeconds: 60,
    });

    const fr = await sessions.session(a, 'fr');
    expect(fr).not.toBe(first);
    expect(await sessions.session(a, 'fr')).toBe(fr);

    const changed = ready('2026-12-01T12:00:00Z'); // the informer's next object for it
    expect(await sessions.session(changed, 'en')).not.toBe(first);

    template = { spec: { tasks: [{ id: 'q1', sandbox: 'warehouse', points: 5, title: 'Q1, reworded' }] } };
    const retitled = await sessions.session(a, 'en');
    expect(retitled.tasks[0]!.title).toBe('Q1, reworded');
    expect(toSessionView(retitled).tasks[0]!.title).toBe('Q1, reworded');

    // The credentials cache keeps a Secret a minute: read again after that, a new password shows.
    password = 'p2';
    vi.advanceTimersByTime(61_000);
    const reread = await sessions.session(a, 'en');
    expect(reread.sandboxes[0]!.credentials).toMatchObject({ password: 'p2' });
    expect(toSessionView(reread).sandboxes![0]!.password).toBe('p2');
  });

  it('stops handing credentials the moment the assessment ends, on the same objects', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-12-01T09:00:00Z') });
    const a = ready('2026-12-01T10:00:00Z');
    expect((await sessions.session(a, 'en')).sandboxes[0]!.credentials).toBeDefined();
    vi.setSystemTime(Date.parse('2026-12-01T11:00:00Z')); // past the end and its clock-skew allowance
    const after = await sessions.session(a, 'en');
    expect(after.sandboxes[0]!.credentials).toBeUndefined();
    const view = toSessionView(after);
    expect(view.sandboxes![0]).toMatchObject({ snippets: null });
    expect(view.sandboxes![0]!.password).toBeUndefined();
    expect(view.timeLeftSeconds).toBe(0);
  });
});
