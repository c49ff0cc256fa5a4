import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import type { AssessmentObject } from '../../services/assessments.ts';
import { Forbidden, Unauthenticated } from '../../services/errors.ts';
import { can, type Permission, type Staff } from '../../services/staff-auth.ts';

declare module 'fastify' {
  interface FastifyRequest {
    staff?: Staff;
    candidate?: { assessment: AssessmentObject; linkId: string };
  }
  interface FastifyInstance {
    /** onRequest hook: a staff principal holding `permission` in the route's `:team`. */
    requireStaff(permission: Permission): (request: FastifyRequest) => Promise<void>;
    /** onRequest hook (a callback one): a valid candidate link for a live assessment. */
    requireCandidate(): (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;
  }
}

/** The token of `Authorization: Bearer <token>`. */
const bearer = (request: FastifyRequest) =>
  /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];

/**
 * Who may do what, before anything else runs (onRequest, so before body parsing and validation).
 * Staff: OIDC or API key (app.staffAuth), then a role and team check per route. Candidates: a
 * signed link whose subject is one assessment, still current, not revoked, not over (app.links).
 */
export default fp(
  async function authPlugin(app: FastifyInstance) {
    app.decorateRequest('staff', undefined);
    app.decorateRequest('candidate', undefined);

    /**
     * The credential is checked first; only a refused one may meet the failure throttle
     * (brute-force.ts). A candidate's revoked or ended link (403: its signature held) is no guess.
     */
    const checkedFirst =
      (check: (request: FastifyRequest) => Promise<void>) => async (request: FastifyRequest) => {
        try {
          await check(request);
        } catch (err) {
          app.throttleFailedAuth(request);
          throw err;
        }
      };

    app.decorate('requireStaff', (permission: Permission) =>
      checkedFirst(async (request: FastifyRequest) => {
        const token = bearer(request);
        if (!token)
          throw new Unauthenticated(
            'missing bearer token: send Authorization: Bearer <OIDC token or API key>',
          );
        const staff = await app.staffAuth.authenticate(token);
        const team = (request.params as { team?: string }).team;
        if (team !== undefined && !can(staff, permission, team)) {
          throw new Forbidden(
            `${staff.subject} (${staff.role}) may not ${permission.replace(':', ' ')} in team ${team}`,
          );
        }
        request.staff = staff;
      }),
    );

    /**
     * A callback hook, answering without a promise when it can: a candidate's page polls with one
     * token, which is verified once until it expires (links.ts), and the rest of the check reads
     * the cache. A refused credential meets the failure throttle as in checkedFirst, unless it is a
     * 403 (a revoked or ended link: its signature held, no guess).
     */
    const refuseCandidate = (request: FastifyRequest, err: unknown, done: HookHandlerDoneFunction) => {
      try {
        if (!(err instanceof Forbidden)) app.throttleFailedAuth(request);
        done(err as Error);
      } catch (throttled) {
        done(throttled as Error);
      }
    };
    app.decorate(
      'requireCandidate',
      () => (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
        const token = bearer(request);
        let now: FastifyRequest['candidate'];
        try {
          if (!token)
            throw new Unauthenticated({
              en: 'missing bearer token: open the link you were sent',
              fr: 'jeton absent : ouvrez le lien que vous avez reçu',
            });
          now = app.links.authenticateNow(token);
        } catch (err) {
          refuseCandidate(request, err, done);
          return;
        }
        if (now) {
          request.candidate = now;
          done();
          return;
        }
        app.links.authenticate(token!).then(
          (candidate) => {
            request.candidate = candidate;
            done();
          },
          (err) => refuseCandidate(request, err, done),
        );
      },
    );
  },
  { name: 'auth', dependencies: ['staff-auth', 'links', 'brute-force'] },
);
