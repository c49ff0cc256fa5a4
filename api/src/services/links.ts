import { createPublicKey, randomBytes } from 'node:crypto';
import {
  type CryptoKey,
  generateKeyPair,
  importPKCS8,
  importSPKI,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';

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

  /** Verifies signature, algorithm, issuer, audience and expiry; returns the claims. */
  async verify(token: string): Promise<{ assessment: string; linkId: string; payload: JWTPayload }> {
    const hit = this.verified.get(token);
    if (hit && (hit.payload.exp ?? 0) * 1000 > Date.now()) return hit;
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
