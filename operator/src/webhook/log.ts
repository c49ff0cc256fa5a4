import {
  type CloudEvent,
  type DeliveryAttempt,
  MAX_ATTEMPTS_KEPT,
  type WebhookDelivery,
} from '@epreuve/crds';
import { type BackoffOptions, backoffMs } from './backoff.ts';

export interface LogPolicy extends BackoffOptions {
  /** Deliveries kept per team. */
  size: number;
  /** Attempts before a delivery is given up (staff may still redeliver it). */
  maxAttempts: number;
}

/** Adds events not in the log yet, due now; returns the ids added. */
export function addEvents(log: WebhookDelivery[], events: CloudEvent[], now: Date): string[] {
  const known = new Set(log.map((d) => d.id));
  const added: string[] = [];
  for (const event of events) {
    if (known.has(event.id)) continue;
    known.add(event.id);
    added.push(event.id);
    log.push({
      id: event.id,
      type: event.type,
      subject: event.subject,
      state: 'pending',
      attempts: 0,
      nextAttemptAt: now.toISOString(),
      history: [],
      redeliveries: 0,
      event,
    });
  }
  return added;
}

/** Staff asked to send these again: due now, with a fresh attempt budget; the same id and body. */
export function redeliver(log: WebhookDelivery[], ids: string[], now: Date): void {
  for (const d of log) {
    if (!ids.includes(d.id)) continue;
    d.state = 'pending';
    d.attempts = 0;
    d.nextAttemptAt = now.toISOString();
    d.redeliveries += 1;
  }
}

/** The deliveries whose next attempt is due, oldest first. */
export const dueDeliveries = (log: WebhookDelivery[], now: Date) =>
  log.filter((d) => d.state === 'pending' && Date.parse(d.nextAttemptAt ?? '') <= now.getTime());

/** Records one attempt: delivered on a 2xx, else retried after backoff, or failed past maxAttempts. */
export function recordAttempt(
  d: WebhookDelivery,
  attempt: DeliveryAttempt,
  policy: LogPolicy,
  now: Date,
  random: () => number = Math.random,
): void {
  d.history = [...d.history, attempt].slice(-MAX_ATTEMPTS_KEPT);
  d.attempts += 1;
  const ok = attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300 && !attempt.error;
  if (ok) {
    d.state = 'delivered';
    d.nextAttemptAt = undefined;
  } else if (d.attempts >= policy.maxAttempts) {
    d.state = 'failed';
    d.nextAttemptAt = undefined;
  } else {
    d.nextAttemptAt = new Date(now.getTime() + backoffMs(d.attempts, policy, random)).toISOString();
  }
}

/**
 * Keeps the log within `size`: the oldest finished deliveries go first; pending ones only when
 * the log holds nothing else (a receiver down while more than `size` events pile up).
 */
export function trim(log: WebhookDelivery[], size: number): { log: WebhookDelivery[]; dropped: number } {
  let excess = log.length - size;
  if (excess <= 0) return { log, dropped: 0 };
  const dropped = excess;
  const kept = log.filter((d) => {
    if (excess > 0 && d.state !== 'pending') {
      excess--;
      return false;
    }
    return true;
  });
  return { log: kept.slice(kept.length - size), dropped };
}

/** When the next attempt is due, in ms from now (undefined: nothing pending). */
export function nextDueInMs(log: WebhookDelivery[], now: Date): number | undefined {
  const times = log
    .filter((d) => d.state === 'pending' && d.nextAttemptAt)
    .map((d) => Date.parse(d.nextAttemptAt!) - now.getTime());
  return times.length ? Math.max(0, Math.min(...times)) : undefined;
}
