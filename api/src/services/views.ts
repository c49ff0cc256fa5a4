import { ANNOTATIONS } from '@epreuve/crds';
import type { A } from './assessments.ts';

/** What staff see of an assessment: no credentials, no internals. */
export function assessmentView(a: A) {
  const s = a.status ?? {};
  return {
    name: a.metadata.name!,
    team: a.metadata.namespace!,
    template: a.spec.templateRef.name,
    candidate: a.spec.candidate,
    duration: a.spec.duration ?? null,
    startPolicy: a.spec.startPolicy,
    revoked: a.spec.revoked ?? false,
    phase: s.phase ?? 'Pending',
    namespace: s.namespace ?? null,
    createdAt: String(a.metadata.creationTimestamp ?? ''),
    startedAt: s.startedAt ?? null,
    readyAt: s.readyAt ?? null,
    expiresAt: s.expiresAt ?? null,
    sandboxes: (s.sandboxes ?? []).map(({ name, kind, ready, host, port }) => ({
      name,
      kind,
      ready,
      host: host ?? null,
      port: port ?? null,
    })),
    conditions: (s.conditions ?? []).map(({ type, status, reason, message }) => ({
      type,
      status,
      reason,
      message,
    })),
    linkIssued: Boolean(a.metadata.annotations?.[ANNOTATIONS.linkId]),
  };
}
export type AssessmentView = ReturnType<typeof assessmentView>;
