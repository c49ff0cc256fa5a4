import type { Assessment } from './assessment.ts';
import { durationMs } from './common.ts';
import { ANNOTATIONS } from './names.ts';
import { type AssessmentTemplate, DEFAULT_HIBERNATE_FOR } from './template.ts';

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

/**
 * Clock skew tolerated between the operator, the API and the gateway (NTP keeps nodes within
 * milliseconds; small, because it is time the candidate gets past the deadline: the gateway cuts
 * open connections at the deadline + this + one recheck, within 5 s).
 */
export const CLOCK_SKEW_MS = 2000;

/**
 * Why a candidate may not work on an assessment right now — revoked, not started, or past its
 * deadline — or undefined when they may. Checked by the API and the gateway themselves, from the
 * object alone (so they do not wait for the operator to change the phase). `started` says whether
 * the clock runs (the gateway trusts only the status; the API also the arrival it records).
 */
export function accessRefusal(
  a: Pick<Assessment, 'spec' | 'status'>,
  now: Date,
  started: boolean,
): string | undefined {
  switch (refusalReason(a, now, started)) {
    case 'revoked':
      return 'this assessment was revoked';
    case 'ended':
      return `this assessment ended${a.status?.expiresAt ? ` at ${a.status.expiresAt}` : ''}`;
    case 'notStarted':
      return 'this assessment has not started: open your link and press Start';
    case undefined:
      return undefined;
  }
}

/** Which refusal `accessRefusal` says, for callers that word it themselves (other languages). */
export function refusalReason(
  a: Pick<Assessment, 'spec' | 'status'>,
  now: Date,
  started: boolean,
): 'revoked' | 'ended' | 'notStarted' | undefined {
  if (a.spec.revoked) return 'revoked';
  const expiresAt = a.status?.expiresAt ? Date.parse(a.status.expiresAt) : undefined;
  if (hasEnded(a) || (expiresAt !== undefined && now.getTime() > expiresAt + CLOCK_SKEW_MS)) return 'ended';
  if (!started) return 'notStarted';
  return undefined;
}

// ---- hibernation (issue 17) ----

/**
 * Whether the candidate's time is over for good: Expired (namespace deleted), or Hibernated
 * (sandboxes stopped, volumes kept for staff — a staff reopen never gives the candidate access back).
 */
export function hasEnded(a: Pick<Assessment, 'status'>): boolean {
  return a.status?.phase === 'Expired' || a.status?.phase === 'Hibernated';
}

export const HIBERNATION = {
  /**
   * On an Assessment: RFC 3339 time until which staff reopened its hibernated sandboxes (written
   * by the API's reopen route, read by the operator, which never lets it pass hibernatedUntil).
   */
  reopenAnnotation: 'epreuve.dev/reopen-until',
  /** Default and longest reopen window: a follow-up interview is 60–90 minutes. */
  defaultReopen: '2h',
  maxReopen: '4h',
} as const;

/** When a hibernated assessment's volumes are deleted: the deadline plus the template's hibernateFor. */
export function hibernationEnd(expiresAt: Date, t: Pick<AssessmentTemplate, 'spec'>): Date {
  return new Date(expiresAt.getTime() + durationMs(t.spec.hibernateFor ?? DEFAULT_HIBERNATE_FOR));
}
