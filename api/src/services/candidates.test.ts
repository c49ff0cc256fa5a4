import { describe, expect, it } from 'vitest';
import type { AssessmentObject } from './assessments.ts';
import { refusalMessage } from './candidates.ts';

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
