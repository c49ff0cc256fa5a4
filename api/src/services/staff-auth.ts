import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { ApiConfig, ApiKeyEntry } from '../config.ts';
import { Unauthenticated } from './errors.ts';

export type Role = 'admin' | 'recruiter' | 'reviewer';

export interface Staff {
  subject: string;
  role: Role;
  /** Team namespaces this principal may act in; admins act everywhere. */
  teams: string[];
  via: 'oidc' | 'api-key';
}

const ROLE_RANK: Record<Role, number> = { reviewer: 1, recruiter: 2, admin: 3 };
/** API keys carry this prefix, so they are told from JWTs at a glance (and by secret scanners). */
export const API_KEY_PREFIX = 'epk_';
/** At least 128 bits after the prefix: 22 base64url characters (6 bits each). */
export const API_KEY_MIN_SECRET_CHARS = 22;

/** What each role may do. Recruiters manage assessments; reviewers read results and score. */
export const PERMISSIONS = {
  'templates:read': ['admin', 'recruiter', 'reviewer'],
  'assessments:read': ['admin', 'recruiter', 'reviewer'],
  'assessments:write': ['admin', 'recruiter'],
  'results:read': ['admin', 'recruiter', 'reviewer'],
  'interview:score': ['admin', 'reviewer'],
  'answers:grade': ['admin', 'reviewer'],
  /** Reopen a hibernated assessment read-only for the follow-up interview (issue 17). */
  'assessments:reopen': ['admin', 'recruiter', 'reviewer'],
} as const satisfies Record<string, Role[]>;
export type Permission = keyof typeof PERMISSIONS;

export function can(staff: Staff, permission: Permission, team: string): boolean {
  const roleOk = (PERMISSIONS[permission] as readonly Role[]).includes(staff.role);
  const teamOk = staff.role === 'admin' || staff.teams.includes(team) || staff.teams.includes('*');
  return roleOk && teamOk;
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Authenticates staff: OIDC bearer JWTs verified against the issuer's JWKS (issuer, audience and
 * algorithms pinned), or API keys for automation, matched by SHA-256 in constant time.
 */
export class StaffAuthenticator {
  private readonly config: ApiConfig;
  private readonly jwks?: JWTVerifyGetKey;
  private readonly keys: Array<ApiKeyEntry & { digest: Buffer }>;

  constructor(config: ApiConfig, jwks?: JWTVerifyGetKey) {
    this.config = config;
    this.jwks =
      jwks ??
      (config.EPREUVE_OIDC_JWKS_URL ? createRemoteJWKSet(new URL(config.EPREUVE_OIDC_JWKS_URL)) : undefined);
    this.keys = config.apiKeys.map((k) => ({ ...k, digest: Buffer.from(k.sha256, 'hex') }));
  }

  /** Who a bearer token (an OIDC JWT or an API key) stands for. */
  async authenticate(token: string): Promise<Staff> {
    return token.startsWith(API_KEY_PREFIX) ? this.apiKey(token) : this.oidc(token);
  }

  private apiKey(key: string): Staff {
    // Only hashes are configured, so a key's strength cannot be checked at start-up; a short one
    // is refused when presented, before any comparison (keys are generated with 192 bits).
    if (key.length - API_KEY_PREFIX.length < API_KEY_MIN_SECRET_CHARS)
      throw new Unauthenticated('invalid credentials');
    const digest = Buffer.from(sha256(key), 'hex');
    // Compare against every entry, always, so timing says nothing about which (if any) matched.
    let found: ApiKeyEntry | undefined;
    for (const k of this.keys) if (timingSafeEqual(k.digest, digest) && !found) found = k;
    if (!found) throw new Unauthenticated('invalid credentials');
    return { subject: `api-key:${found.name}`, role: found.role, teams: found.teams, via: 'api-key' };
  }

  private async oidc(token: string): Promise<Staff> {
    if (!this.jwks || !this.config.EPREUVE_OIDC_ISSUER)
      throw new Unauthenticated('OIDC is not configured; use an API key');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.config.EPREUVE_OIDC_ISSUER,
        audience: this.config.EPREUVE_OIDC_AUDIENCE,
        algorithms: this.config.EPREUVE_OIDC_ALGORITHMS,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (err) {
      // The library's text tells a prober which check failed; the caller learns only what to do.
      const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
      throw new Unauthenticated(
        expired ? 'invalid credentials: the token has expired' : 'invalid credentials',
      );
    }
    const roles = toList(payload[this.config.EPREUVE_OIDC_ROLES_CLAIM]).filter(
      (r): r is Role => r in ROLE_RANK,
    );
    if (roles.length === 0)
      throw new Unauthenticated(
        `token grants no Épreuve role (claim ${this.config.EPREUVE_OIDC_ROLES_CLAIM})`,
      );
    const role = roles.sort((a, b) => ROLE_RANK[b] - ROLE_RANK[a])[0]!;
    return {
      subject: String(payload.sub),
      role,
      teams: toList(payload[this.config.EPREUVE_OIDC_TEAMS_CLAIM]),
      via: 'oidc',
    };
  }
}

function toList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean);
  return [];
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Staff authentication: OIDC JWTs and API keys. */
    staffAuth: StaffAuthenticator;
  }
}

/** `app.staffAuth`, as configured (tests pass one with their own JWKS). */
export default fp(
  async function staffAuthPlugin(app: FastifyInstance, opts: { authenticator: StaffAuthenticator }) {
    app.decorate('staffAuth', opts.authenticator);
  },
  { name: 'staff-auth' },
);
