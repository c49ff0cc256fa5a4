import { describe, expect, it } from 'vitest';
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
