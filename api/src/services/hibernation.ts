import {
  credentialsSecretName,
  DB_CREDENTIAL_KEYS,
  durationMs,
  duration as durationSchema,
  HIBERNATION,
  KINDS,
} from '@epreuve/crds';
import type { KubeClient } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import type { AssessmentObject } from './assessments.ts';
import { Conflict, Invalid } from './errors.ts';
import { readSecretData } from './secrets.ts';

/**
 * Staff reopen of a hibernated assessment (issue 17), for the follow-up interview. The API asks,
 * the operator acts: the route writes the `epreuve.dev/reopen-until` annotation, and the operator
 * scales the sandboxes back up until then (never past the hibernation's end), then to 0 again.
 * The candidate stays refused (the phase stays Hibernated: API and gateway say ended). Staff get
 * the read-only grader role's credentials, never the candidate's: on PostgreSQL the server enforces
 * it (SELECT only, default_transaction_read_only); on a MongoDB server that enforces roles it is
 * `read`. They reach the sandboxes with `kubectl port-forward`, which needs cluster access to the
 * candidate namespace: the gateway, the candidates' way in, keeps refusing every connection.
 */
/** A plain object (not wrapped in a default), so a refusal names `body.duration`. */
export const ReopenBody = z.object({
  duration: durationSchema()
    .default(HIBERNATION.defaultReopen)
    .describe(
      `How long the sandboxes run again, at most ${HIBERNATION.maxReopen} (default ${HIBERNATION.defaultReopen}).`,
    ),
});

export const ReopenView = z
  .object({
    reopenedUntil: z.string().describe('When the sandboxes are stopped again (at most the deletion time)'),
    hibernatedUntil: z.string().describe('When the sandboxes and their volumes are deleted'),
    namespace: z.string(),
    sandboxes: z.array(
      z.object({
        name: z.string(),
        kind: z.enum(['postgres', 'mongo']),
        host: z.string().describe('In-cluster host of the sandbox'),
        port: z.number().int(),
        database: z.string(),
        username: z.string().describe('The read-only staff role (the grader role), not the candidate'),
        password: z.string(),
        readOnly: z
          .enum(['enforced', 'whereServerEnforcesRoles'])
          .describe('PostgreSQL enforces it; a MongoDB-protocol server without roles (FerretDB) does not'),
        portForward: z.string().describe('The command that reaches it from a staff machine'),
      }),
    ),
  })
  .describe('Staff-only connection details of a reopened hibernated assessment (Cache-Control: no-store)');
export type ReopenView = z.infer<typeof ReopenView>;

export class Hibernation {
  private readonly client: KubeClient;
  private readonly now: () => Date;

  constructor(client: KubeClient, now: () => Date = () => new Date()) {
    this.client = client;
    this.now = now;
  }

  async reopen(a: AssessmentObject, duration: string): Promise<ReopenView> {
    const s = a.status ?? {};
    if (a.spec.revoked) throw new Conflict('this assessment was revoked: its sandboxes are deleted');
    if (s.phase !== 'Hibernated' || !s.hibernatedUntil || !s.namespace)
      throw new Conflict(
        `only a hibernated assessment can be reopened; this one is ${s.phase ?? 'Pending'} (its template needs onExpiry: Hibernate)`,
      );
    if (durationMs(duration) > durationMs(HIBERNATION.maxReopen))
      throw new Invalid(`duration must be at most ${HIBERNATION.maxReopen}`, 'duration', 'tooLong');
    const end = Math.min(this.now().getTime() + durationMs(duration), Date.parse(s.hibernatedUntil));
    const reopenedUntil = new Date(end).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await this.client.mergePatch(KINDS.Assessment, a.metadata.namespace, a.metadata.name!, {
      metadata: { annotations: { [HIBERNATION.reopenAnnotation]: reopenedUntil } },
    });

    const sandboxes: ReopenView['sandboxes'] = [];
    for (const sb of s.sandboxes ?? []) {
      if (sb.kind !== 'postgres' && sb.kind !== 'mongo') continue;
      const secret = await readSecretData(
        this.client,
        s.namespace,
        sb.secretName ?? credentialsSecretName(sb.name),
      );
      if (!secret) continue;
      const port = sb.port ?? (sb.kind === 'postgres' ? 5432 : 27017);
      sandboxes.push({
        name: sb.name,
        kind: sb.kind,
        host: sb.host ?? `${sb.name}.${s.namespace}.svc`,
        port,
        database: secret[DB_CREDENTIAL_KEYS.database] ?? 'sandbox',
        username: secret[DB_CREDENTIAL_KEYS.graderUsername] ?? '',
        password: secret[DB_CREDENTIAL_KEYS.graderPassword] ?? '',
        readOnly: sb.kind === 'postgres' ? 'enforced' : 'whereServerEnforcesRoles',
        portForward: `kubectl -n ${s.namespace} port-forward svc/${sb.name} ${port}:${port}`,
      });
    }
    return { reopenedUntil, hibernatedUntil: s.hibernatedUntil, namespace: s.namespace, sandboxes };
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Staff reopen of hibernated assessments (issue 17). */
    hibernation: Hibernation;
  }
}

/** `app.hibernation`. */
export default fp(
  async function hibernationPlugin(app: FastifyInstance, opts: { client: KubeClient }) {
    app.decorate('hibernation', new Hibernation(opts.client));
  },
  { name: 'hibernation', dependencies: ['assessments'] },
);
