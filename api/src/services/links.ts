import { createPublicKey, randomBytes } from 'node:crypto';
import { ANNOTATIONS, hasEnded } from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import {
  type CryptoKey,
  generateKeyPair,
  importPKCS8,
  importSPKI,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { AssessmentObject, AssessmentStore } from './assessments.ts';
import { Conflict, Forbidden, type Localized, Unauthenticated } from './errors.ts';

export const LINK_AUDIENCE = 'epreuve-candidate';
export const LINK_ISSUER = 'epreuve';
const ALG = 'EdDSA';

export interface LinkClaims {
  /** `team-namespace/assessment-name`: the one assessment this token opens. */
  assessment: string;
  /** Link id; valid only while it equals the assessment's `epreuve.dev/link-id` annotation. */
  linkId: string;
  expiresAt: Date;
}

/** Why a link no longer opens its assessment, as the candidate reads it. */
const LINK = {
  expired: { en: 'this link has expired', fr: 'ce lien a expiré' },
  invalid: { en: 'this link is not valid', fr: 'ce lien n’est pas valide' },
  revoked: { en: 'this assessment was revoked', fr: 'cette évaluation a été révoquée' },
  replaced: { en: 'this link was replaced by a newer one', fr: 'ce lien a été remplacé par un plus récent' },
  ended: { en: 'this assessment has ended', fr: 'cette évaluation est terminée' },
} satisfies Record<string, Localized>;
/**
 * Candidate links: EdDSA-signed JWTs whose subject is one assessment. Rotation issues a new link
 * id, which the assessment records, so every earlier link stops working; revoking the assessment
 * stops them all. The signing key never leaves the API.
 */
export class LinkSigner {
  private readonly privateKey: CryptoKey;
  private readonly publicKey: CryptoKey;

  private constructor(privateKey: CryptoKey, publicKey: CryptoKey) {
    this.privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** From a PKCS#8 PEM Ed25519 key (a mounted Secret). */
  static async fromPem(pem: string): Promise<LinkSigner> {
    const privateKey = await importPKCS8(pem, ALG);
    const publicPem = createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();
    return new LinkSigner(privateKey, await importSPKI(publicPem, ALG));
  }

  /** A fresh key pair: for development and tests only (links die with the process). */
  static async ephemeral(): Promise<LinkSigner> {
    const { privateKey, publicKey } = await generateKeyPair(ALG, { crv: 'Ed25519' });
    return new LinkSigner(privateKey, publicKey);
  }

  static newLinkId(): string {
    return randomBytes(12).toString('base64url');
  }

  sign(claims: LinkClaims): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: ALG, typ: 'JWT' })
      .setIssuer(LINK_ISSUER)
      .setAudience(LINK_AUDIENCE)
      .setSubject(claims.assessment)
      .setJti(claims.linkId)
      .setIssuedAt()
      .setExpirationTime(Math.floor(claims.expiresAt.getTime() / 1000))
      .sign(this.privateKey);
  }

  /** Tokens already verified, until they expire: a candidate's page polls with the same token. */
  private readonly verified = new Map<string, { assessment: string; linkId: string; payload: JWTPayload }>();

  /** The claims of a token verified before and not expired since, without a promise; else undefined. */
  verifiedBefore(token: string): { assessment: string; linkId: string; payload: JWTPayload } | undefined {
    const hit = this.verified.get(token);
    return hit && (hit.payload.exp ?? 0) * 1000 > Date.now() ? hit : undefined;
  }

  /** Verifies signature, algorithm, issuer, audience and expiry; returns the claims. */
  async verify(token: string): Promise<{ assessment: string; linkId: string; payload: JWTPayload }> {
    const hit = this.verifiedBefore(token);
    if (hit) return hit;
    const { payload } = await jwtVerify(token, this.publicKey, {
      algorithms: [ALG],
      issuer: LINK_ISSUER,
      audience: LINK_AUDIENCE,
      requiredClaims: ['sub', 'jti', 'exp'],
    });
    const claims = { assessment: payload.sub!, linkId: payload.jti!, payload };
    if (this.verified.size >= 10_000) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, claims);
    return claims;
  }
}

/** A link as staff send it: the page URL carrying the token in its fragment. */
export interface IssuedLink {
  url: string;
  token: string;
  expiresAt: Date;
}

/**
 * Candidate links of assessments: issuing (and rotating) them, and telling whether a token still
 * opens its assessment — not replaced by a newer link, not revoked, not ended.
 */
export class CandidateLinks {
  private readonly store: AssessmentStore;
  readonly signer: LinkSigner;
  private readonly publicUrl: string;
  private readonly maxAgeMs: number;

  constructor(store: AssessmentStore, signer: LinkSigner, o: { publicUrl: string; maxAgeMs: number }) {
    this.store = store;
    this.signer = signer;
    this.publicUrl = o.publicUrl.replace(/\/$/, '');
    this.maxAgeMs = o.maxAgeMs;
  }

  /** A new link; every earlier one stops working. It lives until the assessment ends, at most maxAge. */
  async issue(a: AssessmentObject): Promise<IssuedLink> {
    if (a.spec.revoked || hasEnded(a)) throw new Conflict('this assessment has ended; it cannot have a link');
    const linkId = LinkSigner.newLinkId();
    const updated = await this.store.setLinkId(a, linkId);
    const cap = Date.now() + this.maxAgeMs;
    const expiresAt = new Date(
      updated.status?.expiresAt ? Math.min(Date.parse(updated.status.expiresAt), cap) : cap,
    );
    const token = await this.signer.sign({ assessment: keyOf(a), linkId, expiresAt });
    // The token travels in the URL fragment: browsers never send it to servers or in Referer.
    return { url: `${this.publicUrl}/candidate#token=${token}`, token, expiresAt };
  }

  /** The same link (same id) with another expiry, e.g. once the candidate's clock has started. */
  renew(a: AssessmentObject, linkId: string, expiresAt: Date): Promise<string> {
    return this.signer.sign({ assessment: keyOf(a), linkId, expiresAt });
  }

  /** Link ids the API server confirmed replaced, and until when that answer is trusted. */
  private readonly replaced = new Map<string, number>();

  private rememberReplaced(linkId: string): void {
    const now = Date.now();
    for (const [id, until] of this.replaced) if (until <= now) this.replaced.delete(id);
    if (this.replaced.size >= 10_000) this.replaced.delete(this.replaced.keys().next().value!);
    this.replaced.set(linkId, now + 60_000);
  }

  /** The assessment a token opens, if it still does. */
  async authenticate(token: string): Promise<{ assessment: AssessmentObject; linkId: string }> {
    let claims: { assessment: string; linkId: string };
    try {
      claims = this.signer.verifiedBefore(token) ?? (await this.signer.verify(token));
    } catch (err) {
      throw new Unauthenticated(/exp/.test((err as Error).message) ? LINK.expired : LINK.invalid);
    }
    const cached = this.checkCached(claims);
    if (cached) return cached;
    // The cache sees a new link a moment after it was issued (longer on a busy cluster, or when
    // another API replica issued it): before saying "replaced", ask the API server, once per
    // link id a minute, so a replaced link's retries cost no read each.
    const known = (this.replaced.get(claims.linkId) ?? 0) > Date.now();
    const fresh = known ? undefined : await this.store.fresh(claims.assessment);
    if (fresh?.metadata.annotations?.[ANNOTATIONS.linkId] !== claims.linkId) {
      this.rememberReplaced(claims.linkId);
      throw new Unauthenticated(LINK.replaced);
    }
    return this.open(fresh, claims.linkId);
  }

  /**
   * What {@link authenticate} answers, without a promise, when it needs nothing asynchronous: the
   * token was verified before (its signature is not checked again until it expires) and the cache
   * shows its link id. Undefined when it cannot tell so: then call authenticate. Every other check
   * (revoked, ended, the link id against the assessment's) is made on every call, on the cache's
   * current object.
   */
  authenticateNow(token: string): { assessment: AssessmentObject; linkId: string } | undefined {
    const claims = this.signer.verifiedBefore(token);
    return claims && this.checkCached(claims);
  }

  /** The assessment the cache holds for these claims if it still opens, undefined when its link id differs. */
  private checkCached(claims: { assessment: string; linkId: string }) {
    const assessment = this.store.assessments.get(claims.assessment);
    if (!assessment) throw new Unauthenticated(LINK.invalid);
    if (assessment.spec.revoked) throw new Forbidden(LINK.revoked);
    if (assessment.metadata.annotations?.[ANNOTATIONS.linkId] !== claims.linkId) return undefined;
    return this.open(assessment, claims.linkId);
  }

  private open(assessment: AssessmentObject, linkId: string) {
    if (assessment.spec.revoked) throw new Forbidden(LINK.revoked);
    if (hasEnded(assessment)) throw new Forbidden(LINK.ended); // Expired or Hibernated (issue 17)
    return { assessment, linkId };
  }
}

const keyOf = (a: AssessmentObject) => `${a.metadata.namespace}/${a.metadata.name}`;

declare module 'fastify' {
  interface FastifyInstance {
    /** Candidate links: issue, renew, authenticate. */
    links: CandidateLinks;
  }
}

/** `app.links`, signing with the key the caller loaded (main.ts: EPREUVE_LINK_KEY_FILE). */
export default fp(
  async function linksPlugin(
    app: FastifyInstance,
    opts: { signer: LinkSigner; publicUrl: string; maxAgeMs: number },
  ) {
    app.decorate('links', new CandidateLinks(app.assessments, opts.signer, opts));
  },
  { name: 'links', dependencies: ['assessments'] },
);
