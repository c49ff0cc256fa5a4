import {
  type Assessment,
  type CloudEvent,
  LABELS,
  type Submission,
  WEBHOOK_SENT_ANNOTATION,
  type WebhookEvent,
  webhookEventId,
  webhookEventType,
} from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';

/** An event an object's state calls for, and the object to mark once it is in the delivery log. */
export interface DueEvent {
  event: WebhookEvent;
  cloudEvent: CloudEvent;
  object: { kind: 'Assessment' | 'Submission'; name: string };
}

/** The events already logged for an object, from its annotation. */
export const sentEvents = (obj: KubeObject): Set<string> =>
  new Set((obj.metadata.annotations?.[WEBHOOK_SENT_ANNOTATION] ?? '').split(',').filter(Boolean));

const expiredCondition = (a: Assessment) => a.status?.conditions?.find((c) => c.type === 'Expired');

/**
 * The events the team's assessments and submissions call for, as pure data: each object's state
 * says which of its events happened and when. Events already marked on their object, and events
 * that happened before `since` (when the team set its endpoint up: history is not replayed), are
 * left out. Ids are stable (uid + event), so computing the same event twice logs it once.
 */
export function dueEvents(
  team: string,
  assessments: Array<Assessment & KubeObject>,
  submissions: Array<Submission & KubeObject>,
  since: Date,
): DueEvent[] {
  const out: DueEvent[] = [];
  const templates = new Map<string, string>();
  const make = (
    obj: KubeObject,
    kind: DueEvent['object']['kind'],
    event: WebhookEvent,
    time: string | undefined,
    subject: string,
    data: CloudEvent['data'],
  ) => {
    if (!time || !obj.metadata.uid || sentEvents(obj).has(event)) return;
    if (Date.parse(time) < since.getTime()) return;
    out.push({
      event,
      object: { kind, name: obj.metadata.name! },
      cloudEvent: {
        specversion: '1.0',
        id: webhookEventId(obj.metadata.uid, event),
        source: `/teams/${team}`,
        type: webhookEventType(event),
        subject,
        time,
        datacontenttype: 'application/json',
        data,
      },
    });
  };
  for (const a of assessments) {
    const name = a.metadata.name!;
    templates.set(name, a.spec.templateRef.name);
    if (a.metadata.deletionTimestamp) continue;
    const subject = `assessments/${name}`;
    const data = { team, assessment: name, template: a.spec.templateRef.name };
    const s = a.status ?? {};
    make(a, 'Assessment', 'started', s.startedAt, subject, { ...data, expiresAt: s.expiresAt });
    make(a, 'Assessment', 'ready', s.readyAt, subject, { ...data, expiresAt: s.expiresAt });
    const ended = expiredCondition(a);
    if (a.spec.revoked) {
      // Revoked when staff asked; the operator's Expired condition dates it once it has acted.
      const at = ended?.status === 'True' ? ended.lastTransitionTime : undefined;
      make(a, 'Assessment', 'revoked', at, subject, data);
    } else if (s.phase === 'Expired') {
      make(a, 'Assessment', 'expired', ended?.lastTransitionTime ?? s.expiresAt, subject, data);
    } else if (s.phase === 'Hibernated') {
      // The time ran out and the work is kept for staff: for the candidate it ended all the same.
      // The same id as the Expired that follows at the end of the retention, so it is sent once.
      make(a, 'Assessment', 'expired', s.expiresAt, subject, {
        ...data,
        hibernatedUntil: s.hibernatedUntil,
      });
    }
  }
  for (const sub of submissions) {
    const assessment = sub.spec.assessmentRef.name;
    const subject = `assessments/${assessment}/submissions/${sub.metadata.name}`;
    const data = {
      team,
      assessment,
      template: templates.get(assessment) ?? sub.metadata.labels?.[LABELS.template] ?? '',
      submission: sub.metadata.name!,
      task: sub.spec.task,
    };
    make(sub, 'Submission', 'submitted', sub.spec.submittedAt, subject, data);
    if (sub.status?.graded)
      make(sub, 'Submission', 'graded', sub.status.gradedAt, subject, {
        ...data,
        pass: sub.status.pass,
        points: sub.status.points,
      });
  }
  return out;
}
