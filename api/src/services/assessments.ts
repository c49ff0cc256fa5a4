import { createHash, randomBytes } from 'node:crypto';
import {
  ANNOTATIONS,
  API_VERSION,
  type Assessment,
  type AssessmentTemplate,
  assessmentSpec,
  candidateNamespace,
  durationLimitProblem,
  KINDS,
  LABELS,
  MAX_ASSESSMENT_NAME,
} from '@epreuve/crds';
import {
  type Informer,
  isConflict,
  isNotFound,
  isSubset,
  type KubeClient,
  type KubeObject,
} from '@epreuve/kube';
import { z } from 'zod';
import { Problem } from '../plugins/problem.ts';

export type A = Assessment & KubeObject;
export type T = AssessmentTemplate & KubeObject;
const ASMT = KINDS.Assessment;

/** The body of POST /assessments: the CRD spec, plus an optional name. */
export const createAssessmentBody = assessmentSpec.extend({
  name: z
    .string()
    .max(MAX_ASSESSMENT_NAME)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label (lowercase letters, digits and -)')
    .optional()
    .describe('Name of the Assessment; derived from the candidate name when absent.'),
});
export type CreateAssessmentBody = z.input<typeof createAssessmentBody>;

/** The template's maxDuration bounds every duration (the rule lives in `@epreuve/crds`). */
function assertDurationAllowed(duration: string | undefined, t: T): void {
  const problem = durationLimitProblem(duration, t);
  if (problem)
    throw new Problem(422, problem, {
      invalidParams: [{ name: 'body.duration', reason: `at most ${t.spec.maxDuration}` }],
    });
}

/** A readable, DNS-safe name from a candidate's name: "Jane Doe" → "jane-doe". */
export function slugify(name: string, max = 30): string {
  const slug = name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/, '');
  return slug || 'candidate';
}

/**
 * Assessments as the API sees them: reads from an informer cache (the API server is the
 * database; the cache makes listing and pagination cheap), writes through the Kubernetes API.
 */
export class AssessmentStore {
  private readonly client: KubeClient;
  readonly assessments: Informer<A>;
  readonly templates: Informer<T>;

  constructor(client: KubeClient, assessments: Informer<A>, templates: Informer<T>) {
    this.client = client;
    this.assessments = assessments;
    this.templates = templates;
  }

  get(team: string, name: string): A {
    const a = this.assessments.get(`${team}/${name}`);
    if (!a) throw new Problem(404, `no assessment ${name} in team ${team}`);
    return a;
  }

  template(team: string, name: string): T | undefined {
    return this.templates.get(`${team}/${name}`);
  }

  listTemplates(team: string): T[] {
    return this.templates
      .list()
      .filter((t) => t.metadata.namespace === team)
      .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
  }

  /**
   * Creates an Assessment. With an Idempotency-Key the name is derived from the key, so a retry
   * finds the first one instead of creating a second; the same key with another body is a 409.
   */
  async create(
    team: string,
    body: z.output<typeof createAssessmentBody>,
    o: { idempotencyKey?: string; traceparent?: string; actor: string },
  ): Promise<{ assessment: A; replayed: boolean }> {
    const template = this.template(team, body.templateRef.name);
    if (!template) {
      throw new Problem(422, `no template ${body.templateRef.name} in team ${team}`, {
        invalidParams: [{ name: 'body.templateRef.name', reason: 'no such template' }],
      });
    }
    assertDurationAllowed(body.duration, template);
    const keyHash = o.idempotencyKey
      ? createHash('sha256').update(`${team}\0${o.idempotencyKey}`).digest('hex')
      : undefined;
    if (keyHash) {
      // Authoritative lookup (not the cache): a retry must find the first request's assessment.
      const previous = await this.client.list<A>(ASMT, {
        namespace: team,
        labelSelector: `${LABELS.idempotencyKey}=${keyHash.slice(0, 63)}`,
      });
      const existing = previous.items[0];
      if (existing)
        return {
          assessment: { ...existing, apiVersion: API_VERSION, kind: 'Assessment' },
          replayed: this.sameRequest(existing, body),
        };
    }
    const suffix = keyHash ? keyHash.slice(0, 6) : randomBytes(3).toString('hex');
    const name = body.name ?? `${slugify(body.candidate.name)}-${suffix}`;
    const { name: _name, ...spec } = body;
    const obj: KubeObject = {
      apiVersion: API_VERSION,
      kind: 'Assessment',
      metadata: {
        name,
        namespace: team,
        labels: {
          [LABELS.template]: body.templateRef.name,
          ...(keyHash ? { [LABELS.idempotencyKey]: keyHash.slice(0, 63) } : {}),
        },
        annotations: {
          [ANNOTATIONS.createdBy]: o.actor,
          ...(o.traceparent ? { [ANNOTATIONS.traceparent]: o.traceparent } : {}),
          ...(keyHash ? { [ANNOTATIONS.idempotencyKeySha256]: keyHash } : {}),
        },
      },
      spec,
    };
    try {
      return { assessment: await this.client.create<A>(obj), replayed: false };
    } catch (err) {
      if (!isConflict(err)) throw err;
      const existing = await this.client.get<A>(ASMT, team, name);
      if (keyHash && existing?.metadata.annotations?.[ANNOTATIONS.idempotencyKeySha256] === keyHash) {
        return { assessment: existing, replayed: this.sameRequest(existing, body) };
      }
      throw new Problem(409, `an assessment named ${name} already exists in team ${team}`, {
        invalidParams: [{ name: 'body.name', reason: 'already exists' }],
      });
    }
  }

  /** A replay must carry the same request; the same key for another body is the client's bug. */
  private sameRequest(existing: A, body: z.output<typeof createAssessmentBody>): true {
    const { name: _name, ...spec } = body;
    if (!(isSubset(spec, existing.spec) && isSubset(existing.spec.candidate, body.candidate))) {
      throw new Problem(409, 'this Idempotency-Key was already used for a different assessment');
    }
    return true;
  }

  /**
   * Lists a team's assessments, filtered, ordered by name; `cursor` is the last name of the
   * previous page, so walking the pages yields each assessment once even while others are added.
   */
  list(
    team: string,
    q: { phase?: string; template?: string; candidate?: string; limit: number; cursor?: string },
  ): { items: A[]; nextCursor: string | null } {
    const after = q.cursor ? decodeCursor(q.cursor) : '';
    const needle = q.candidate?.toLowerCase();
    const all = this.assessments
      .list()
      .filter((a) => a.metadata.namespace === team)
      .filter((a) => !q.phase || (a.status?.phase ?? 'Pending') === q.phase)
      .filter((a) => !q.template || a.spec.templateRef.name === q.template)
      .filter(
        (a) =>
          !needle ||
          a.spec.candidate.name.toLowerCase().includes(needle) ||
          a.spec.candidate.email.toLowerCase().includes(needle),
      )
      .filter((a) => a.metadata.name! > after)
      .sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
    const items = all.slice(0, q.limit);
    return {
      items,
      nextCursor: all.length > q.limit ? encodeCursor(items[items.length - 1]!.metadata.name!) : null,
    };
  }

  /** Extends (or shortens) the time box, within the template's maxDuration. */
  async setDuration(a: A, duration: string): Promise<A> {
    const t = this.template(a.metadata.namespace!, a.spec.templateRef.name);
    if (t) assertDurationAllowed(duration, t);
    if (a.status?.phase === 'Expired')
      throw new Problem(409, 'this assessment has ended; its sandboxes are gone');
    return this.patch(a, { spec: { duration } });
  }

  /** Ends the assessment now: the operator deletes the sandboxes, every link stops working. */
  revoke(a: A): Promise<A> {
    return this.patch(a, {
      spec: { revoked: true },
      metadata: { annotations: { [ANNOTATIONS.linkId]: null } },
    });
  }

  async remove(a: A): Promise<void> {
    await this.client.delete(ASMT, a.metadata.namespace, a.metadata.name!);
  }

  /** Records a new link id: every earlier link to this assessment stops working. */
  setLinkId(a: A, linkId: string): Promise<A> {
    return this.patch(a, { metadata: { annotations: { [ANNOTATIONS.linkId]: linkId } } });
  }

  /** Records the candidate's first visit (OnFirstAccess); never moves it once set. */
  async markArrived(a: A, at: Date): Promise<A> {
    if (a.metadata.annotations?.[ANNOTATIONS.candidateArrivedAt]) return a;
    const value = at.toISOString().replace(/\.\d+Z$/, 'Z');
    // Guarded by resourceVersion: two first visits at once record one arrival, not two.
    return this.client.jsonPatch<A>(ASMT, a.metadata.namespace, a.metadata.name!, [
      { op: 'test', path: '/metadata/resourceVersion', value: a.metadata.resourceVersion },
      a.metadata.annotations
        ? {
            op: 'add',
            path: `/metadata/annotations/${ANNOTATIONS.candidateArrivedAt.replace('/', '~1')}`,
            value,
          }
        : { op: 'add', path: '/metadata/annotations', value: { [ANNOTATIONS.candidateArrivedAt]: value } },
    ]);
  }

  private async patch(a: A, patch: object): Promise<A> {
    try {
      return await this.client.mergePatch<A>(ASMT, a.metadata.namespace, a.metadata.name!, patch);
    } catch (err) {
      if (isNotFound(err))
        throw new Problem(404, `no assessment ${a.metadata.name} in team ${a.metadata.namespace}`);
      throw err;
    }
  }
}

export const encodeCursor = (name: string) =>
  Buffer.from(JSON.stringify({ after: name })).toString('base64url');

export function decodeCursor(cursor: string): string {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { after?: unknown };
    if (typeof v.after === 'string') return v.after;
  } catch {
    // fall through
  }
  throw new Problem(400, 'cursor is not a cursor this API returned', {
    invalidParams: [{ name: 'querystring.cursor', reason: 'malformed' }],
  });
}

/** The candidate namespace, for views. */
export const namespaceOfAssessment = (a: A) => candidateNamespace(a.metadata.namespace!, a.metadata.name!);
