import type { Condition } from '@epreuve/crds';

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/**
 * Sets a condition, metav1 style: lastTransitionTime changes only when the status flips; reason,
 * message and observedGeneration are updated in place. Returns a new array, sorted by type so
 * the written status is stable.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  next: ConditionInput,
  now: Date,
): Condition[] {
  const list = conditions ?? [];
  const old = list.find((c) => c.type === next.type);
  const lastTransitionTime = old && old.status === next.status ? old.lastTransitionTime : rfc3339(now);
  const updated: Condition = { ...next, lastTransitionTime };
  return [...list.filter((c) => c.type !== next.type), updated].sort((a, b) => a.type.localeCompare(b.type));
}

export function getCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** metav1.Time has second precision. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export const iso = (d: Date | undefined) => (d ? rfc3339(d) : undefined);
