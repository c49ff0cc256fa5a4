import {
  type Assessment,
  type AssessmentTemplate,
  HIBERNATION,
  hibernationEnd,
  type Timeline,
} from '@epreuve/crds';

/**
 * What the end of an assessment asks for (issue 17), from its spec, status, template and the
 * clock alone, so every pass and every replica decides the same:
 * - Running: before the deadline, or the clock has not started;
 * - Delete: revoked (always, even with onExpiry Hibernate or while hibernated), the deadline of an
 *   onExpiry Delete template, or the end of the hibernation's retention;
 * - Hibernate: past the deadline of an onExpiry Hibernate template, until `until`: the sandboxes
 *   run with `replicas` 0, or 1 while staff reopened them (until `reopenedUntil`).
 */
export type ExpiryDecision =
  | { kind: 'Running' }
  | { kind: 'Delete'; reason: 'Revoked' | 'DeadlineReached' | 'RetentionEnded' }
  | { kind: 'Hibernate'; until: Date; replicas: 0 | 1; reopenedUntil?: Date };

export function expiryDecision(
  a: Pick<Assessment, 'spec' | 'status' | 'metadata'>,
  t: Pick<AssessmentTemplate, 'spec'> | undefined,
  times: Pick<Timeline, 'expiresAt'> | undefined,
  now: Date,
): ExpiryDecision {
  if (a.spec.revoked) return { kind: 'Delete', reason: 'Revoked' };
  let until: Date;
  if (a.status?.phase === 'Hibernated') {
    // Once hibernated, the stored end holds: a later template or duration edit does not move it.
    const stored = a.status.hibernatedUntil ? new Date(a.status.hibernatedUntil) : undefined;
    if (!stored || Number.isNaN(stored.getTime())) return { kind: 'Delete', reason: 'RetentionEnded' };
    until = stored;
  } else {
    if (!times?.expiresAt || now < times.expiresAt) return { kind: 'Running' };
    if (t?.spec.onExpiry !== 'Hibernate') return { kind: 'Delete', reason: 'DeadlineReached' };
    until = hibernationEnd(times.expiresAt, t);
  }
  // Also when the operator was down past the whole retention: nothing is kept longer than promised.
  if (now >= until) return { kind: 'Delete', reason: 'RetentionEnded' };
  const reopenedUntil = reopenWindow(a, until, now);
  return reopenedUntil
    ? { kind: 'Hibernate', until, replicas: 1, reopenedUntil }
    : { kind: 'Hibernate', until, replicas: 0 };
}

/** The end of a staff reopen still running now, never past the hibernation's end; else undefined. */
function reopenWindow(a: Pick<Assessment, 'metadata'>, until: Date, now: Date): Date | undefined {
  const raw = a.metadata.annotations?.[HIBERNATION.reopenAnnotation];
  if (!raw) return undefined;
  const end = Date.parse(raw);
  if (Number.isNaN(end) || end <= now.getTime()) return undefined;
  return new Date(Math.min(end, until.getTime()));
}

/** When the decision changes next by the clock alone (retention or reopen window ending). */
export function nextWake(d: ExpiryDecision): Date | undefined {
  if (d.kind !== 'Hibernate') return undefined;
  return d.reopenedUntil ?? d.until;
}
