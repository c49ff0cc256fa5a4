/**
 * What routes share in their schemas: path parameters, security requirements, and the problem
 * responses each route lists for every error status it can answer.
 */
import { z } from 'zod';
import { TITLES } from '../plugins/app/problem.ts';
import { ProblemView } from '../views.ts';

export const teamParams = z.object({
  team: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a namespace name')
    .max(63)
    .describe('The team: a Kubernetes namespace'),
});
export const assessmentParams = teamParams.extend({ name: z.string().min(1).max(63) });

/** OpenAPI security requirements: staff (OIDC or API key), a candidate link, or none. */
export const STAFF = [{ staff: [] }];
export const CANDIDATE = [{ candidate: [] }];
export const PUBLIC: Array<Record<string, string[]>> = [];

const WHY: Record<number, string> = {
  400: 'The request is malformed; invalid_params names each bad field',
  401: 'No credential, or one that is not valid (WWW-Authenticate: Bearer)',
  403: 'The credential may not do this (role, team), or the assessment was revoked or has ended',
  404: 'No such thing',
  409: 'The current state refuses it',
  413: 'The body is over the limit (EPREUVE_BODY_LIMIT_BYTES)',
  415: 'The body is not JSON',
  422: 'Well-formed, but against a rule; invalid_params names the field',
  429: 'Rate limit reached (Retry-After)',
  500: 'The platform is misconfigured (the detail says how)',
  503: 'Overloaded, or a dependency is unavailable (Retry-After)',
};

export type ProblemStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503;

const problem = (status: ProblemStatus, why?: string) => ({
  description: `${TITLES[status]}: ${why ?? WHY[status]}`,
  content: { 'application/problem+json': { schema: ProblemView } },
});

/** Problem responses for `statuses`; `why` overrides the description of some. */
export function problems<const S extends ProblemStatus>(
  statuses: readonly S[],
  why: Partial<Record<ProblemStatus, string>> = {},
): Record<S, ReturnType<typeof problem>> {
  return Object.fromEntries(statuses.map((s) => [s, problem(s, why[s])])) as Record<
    S,
    ReturnType<typeof problem>
  >;
}

/** What every API route can answer: the rate limit and load shedding. */
const EVERY = [429, 503] as const;
/** Staff routes: authentication and authorisation first, then validation. */
export const STAFF_PROBLEMS = [400, 401, 403, ...EVERY] as const;
/** Candidate routes: the link, then validation. */
export const CANDIDATE_PROBLEMS = [400, 401, 403, ...EVERY] as const;
/** Routes that take a JSON body. */
export const BODY_PROBLEMS = [413, 415] as const;
