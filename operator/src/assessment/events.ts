import type { AssessmentStatus } from '@epreuve/crds';
import type { EventInput } from '@epreuve/kube';
import { getCondition } from './conditions.ts';
import type { Outcome } from './status.ts';

/**
 * The Events of one status change, each told once: from the status the API server holds
 * (`before`) to the one about to be written (`next`). A failed write is retried with the same
 * `before`, so its Events come again — the recorder folds them into one series. An apply failure
 * is told on every pass that has one (the recorder folds the repeats).
 */
export function statusEvents(
  before: AssessmentStatus | undefined,
  next: AssessmentStatus,
  outcome: Outcome,
): EventInput[] {
  const prev = before ?? {};
  const ready = getCondition(next.conditions, 'Ready');
  const wasReady = getCondition(prev.conditions, 'Ready');
  const readyChanged = ready?.reason !== wasReady?.reason || ready?.status !== wasReady?.status;
  const entered = (phase: string) => next.phase === phase && prev.phase !== phase;
  const events: EventInput[] = [];

  switch (outcome.kind) {
    case 'ApplyFailed':
      events.push({ type: 'Warning', reason: outcome.reason, action: 'Apply', note: outcome.message });
      break;
    case 'TemplateNotFound':
      if (readyChanged)
        events.push({
          type: 'Warning',
          reason: 'TemplateNotFound',
          action: 'Provision',
          note: ready?.message,
        });
      break;
    case 'Invalid':
      // QuotaExceeded, DurationExceedsMax
      if (readyChanged)
        events.push({ type: 'Warning', reason: outcome.reason, action: 'Provision', note: outcome.message });
      break;
    case 'Terminating':
      if (entered('Terminating'))
        events.push({
          type: 'Normal',
          reason: 'CleaningUp',
          action: 'Delete',
          note: `deleting the candidate namespace${next.namespace ? ` ${next.namespace}` : ''}`,
        });
      break;
    case 'Expired':
      if (entered('Expired'))
        events.push({
          type: 'Normal',
          reason: outcome.reason === 'Revoked' ? 'Revoked' : 'Expired',
          action: 'Expire',
          note:
            outcome.reason === 'Revoked'
              ? 'access revoked; the candidate namespace is deleted'
              : outcome.reason === 'RetentionEnded'
                ? 'the hibernation ended; the candidate namespace and its volumes are deleted'
                : 'time is up; the candidate namespace is deleted',
        });
      break;
    // ---- hibernation (issue 17) ----
    case 'Hibernated': {
      const h = getCondition(next.conditions, 'Hibernated');
      const was = getCondition(prev.conditions, 'Hibernated');
      if (entered('Hibernated'))
        events.push({
          type: 'Normal',
          reason: 'Hibernated',
          action: 'Expire',
          note: `time is up; sandboxes scaled to 0, volumes kept until ${next.hibernatedUntil}`,
        });
      else if (h?.reason === 'ReopenedForStaff' && was?.reason !== 'ReopenedForStaff')
        events.push({ type: 'Normal', reason: 'Reopened', action: 'Reopen', note: h.message });
      else if (h?.reason === 'Stopped' && was?.reason === 'ReopenedForStaff')
        events.push({ type: 'Normal', reason: 'ReopenEnded', action: 'Hibernate', note: h.message });
      break;
    }
    // ---- end hibernation ----
    case 'Applied': {
      const applied = getCondition(next.conditions, 'Provisioned')?.status === 'True';
      const wasApplied = getCondition(prev.conditions, 'Provisioned')?.status === 'True';
      if (applied && !wasApplied)
        events.push({
          type: 'Normal',
          reason: 'Provisioning',
          action: 'Provision',
          note: `objects applied in ${next.namespace}; ${ready?.message ?? 'waiting for the sandboxes'}`,
        });
      if (prev.phase === 'Ready' && next.phase === 'Provisioning')
        events.push({ type: 'Warning', reason: 'NotReady', action: 'Provision', note: ready?.message });
      if (ready?.reason === 'SeedJobFailed' && readyChanged)
        events.push({ type: 'Warning', reason: 'SeedFailed', action: 'Seed', note: ready.message });
      if (ready?.reason === 'CredentialRotationFailed' && readyChanged)
        events.push({ type: 'Warning', reason: 'RotationFailed', action: 'Claim', note: ready.message });
      else if (entered('Ready'))
        events.push({ type: 'Normal', reason: 'Ready', action: 'Provision', note: ready?.message });
      break;
    }
  }
  return events;
}
