import { ANNOTATIONS, type Assessment, type AssessmentTemplate, durationMs } from '@epreuve/crds';
import { rfc3339 } from './conditions.ts';

/**
 * When an assessment runs, derived from the objects alone so any operator replica computes the
 * same answer: the clock starts at creation (Immediate) or when the API records the candidate's
 * first visit in the `epreuve.dev/candidate-arrived-at` annotation (OnFirstAccess).
 */
export interface Timeline {
  startedAt?: Date;
  expiresAt?: Date;
  durationMs: number;
}

export function timeline(a: Assessment, t: AssessmentTemplate): Timeline {
  const duration = durationMs(a.spec.duration ?? t.spec.duration);
  const startedAt = startOf(a);
  return {
    startedAt,
    expiresAt: startedAt && new Date(startedAt.getTime() + duration),
    durationMs: duration,
  };
}

function startOf(a: Assessment): Date | undefined {
  if (a.spec.startPolicy === 'OnFirstAccess') {
    const arrived = a.metadata.annotations?.[ANNOTATIONS.candidateArrivedAt];
    if (!arrived) return undefined;
    const d = new Date(arrived);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  return a.metadata.creationTimestamp ? new Date(a.metadata.creationTimestamp) : undefined;
}

/** Why an assessment cannot run as specified, or undefined. */
export function durationProblem(a: Assessment, t: AssessmentTemplate): string | undefined {
  if (!a.spec.duration) return undefined;
  if (durationMs(a.spec.duration) > durationMs(t.spec.maxDuration)) {
    return `spec.duration ${a.spec.duration} exceeds the template's maxDuration ${t.spec.maxDuration}`;
  }
  return undefined;
}

export const iso = (d: Date | undefined) => (d ? rfc3339(d) : undefined);
