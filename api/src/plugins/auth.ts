import { ANNOTATIONS } from '@epreuve/crds';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { A, AssessmentStore } from '../services/assessments.ts';
import type { LinkSigner } from '../services/links.ts';
import {
  AuthError,
  can,
  type Permission,
  type Staff,
  type StaffAuthenticator,
} from '../services/staff-auth.ts';
import { Problem } from './problem.ts';

declare module 'fastify' {
  interface FastifyRequest {
    staff?: Staff;
    candidate?: { assessment: A; linkId: string };
  }
  interface FastifyInstance {
    /** preHandler: a staff principal holding `permission` in the route's `:team`. */
    requireStaff(permission: Permission): (request: FastifyRequest) => Promise<void>;
    /** preHandler: a valid candidate link for a live assessment. */
    requireCandidate(): (request: FastifyRequest) => Promise<void>;
  }
}

const unauthorized = (detail: string) =>
  new Problem(401, detail, { headers: { 'www-authenticate': 'Bearer' } });

/**
 * Who may do what. Staff: OIDC or API key, then a role and team check per route. Candidates: a
 * signed link whose subject is one assessment, still current (not rotated), not revoked, not over.
 */
export default fp(async function authPlugin(
  app: FastifyInstance,
  opts: { staff: StaffAuthenticator; links: LinkSigner; store: AssessmentStore },
) {
  app.decorateRequest('staff', undefined);
  app.decorateRequest('candidate', undefined);

  app.decorate('requireStaff', (permission: Permission) => async (request: FastifyRequest) => {
    let staff: Staff;
    try {
      staff = await opts.staff.authenticate(request.headers.authorization);
    } catch (err) {
      if (err instanceof AuthError) throw unauthorized(err.message);
      throw err;
    }
    const team = (request.params as { team?: string }).team;
    if (team !== undefined && !can(staff, permission, team)) {
      throw new Problem(
        403,
        `${staff.subject} (${staff.role}) may not ${permission.replace(':', ' ')} in team ${team}`,
      );
    }
    request.staff = staff;
  });

  app.decorate('requireCandidate', () => async (request: FastifyRequest) => {
    const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    if (!m) throw unauthorized('missing bearer token: open the link you were sent');
    let claims: { assessment: string; linkId: string };
    try {
      claims = await opts.links.verify(m[1]!);
    } catch (err) {
      throw unauthorized(
        /exp/.test((err as Error).message) ? 'this link has expired' : 'this link is not valid',
      );
    }
    const assessment = opts.store.assessments.get(claims.assessment);
    if (!assessment) throw unauthorized('this link is not valid');
    if (assessment.spec.revoked) throw new Problem(403, 'this assessment was revoked');
    if (assessment.metadata.annotations?.[ANNOTATIONS.linkId] !== claims.linkId)
      throw unauthorized('this link was replaced by a newer one');
    if (assessment.status?.phase === 'Expired') throw new Problem(403, 'this assessment has ended');
    request.candidate = { assessment, linkId: claims.linkId };
  });
});

export const arrivedAt = (a: A) => a.metadata.annotations?.[ANNOTATIONS.candidateArrivedAt];
