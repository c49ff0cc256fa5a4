import type { Assessment } from './assessment.ts';
import { durationMs } from './common.ts';
import { ANNOTATIONS } from './names.ts';
import type { AssessmentTemplate } from './template.ts';

/**
 * The lifecycle rules of an assessment, in one place for the operator (which expires it), the
 * API (which shows time left and refuses late answers) and the gateway. Derived from the objects
 * alone, so every process and every replica computes the same answer: the clock starts at
 * creation (Immediate) or when the API records the candidate's first visit in the
 * `epreuve.dev/candidate-arrived-at` annotation (OnFirstAccess).
 */
export interface Timeline {
  startedAt?: Date;
  expiresAt?: Date;
  durationMs: number;
}

type TimelineInput = Pick<Assessment, 'metadata' | 'spec'>;

/** The duration an assessment runs for: its own override, else its template's default. */
export function effectiveDuration(a: Pick<Assessment, 'spec'>, t: Pick<AssessmentTemplate, 'spec'>): string {
  return a.spec.duration ?? t.spec.duration;
}

/** When the clock started (or starts at `arrivedAt`, for a first visit being recorded) and when it stops. */
export function timeline(a: TimelineInput, t: Pick<AssessmentTemplate, 'spec'>, arrivedAt?: Date): Timeline {
  const duration = durationMs(effectiveDuration(a, t));
  const startedAt = startOf(a) ?? arrivedAt;
  return {
    startedAt,
    expiresAt: startedAt && new Date(startedAt.getTime() + duration),
    durationMs: duration,
  };
}

function startOf(a: TimelineInput): Date | undefined {
  if (a.spec.startPolicy === 'OnFirstAccess') {
    const arrived = a.metadata.annotations?.[ANNOTATIONS.candidateArrivedAt];
    if (!arrived) return undefined;
    const d = new Date(arrived);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  return a.metadata.creationTimestamp ? new Date(a.metadata.creationTimestamp) : undefined;
}

/** Why a duration is not allowed by the template (the template's `maxDuration` bounds it), or undefined. */
export function durationLimitProblem(duration: string | undefined, t: Pick<AssessmentTemplate, 'spec'>) {
  if (!duration) return undefined;
  if (durationMs(duration) > durationMs(t.spec.maxDuration)) {
    return `duration ${duration} exceeds the template's maxDuration ${t.spec.maxDuration}`;
  }
  return undefined;
}

/** Why an assessment cannot run as specified, or undefined. */
export function durationProblem(
  a: Pick<Assessment, 'spec'>,
  t: Pick<AssessmentTemplate, 'spec'>,
): string | undefined {
  const problem = durationLimitProblem(a.spec.duration, t);
  return problem && `spec.${problem}`;
}
