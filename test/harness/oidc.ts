import { createServer, type Server } from 'node:http';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';

/**
 * A minimal OIDC issuer on loopback for tests: serves a JWKS over real HTTP and signs tokens
 * with its keys (RS256 and ES256), or with keys it does not publish (to test rejection).
 */
export class TestIssuer {
  readonly issuer = 'https://issuer.test';
  private server?: Server;
  private keys: Record<'RS256' | 'ES256', { privateKey: CryptoKey; kid: string }> = {} as never;
  private rogue?: CryptoKey;
  jwksUrl = '';

  async start(): Promise<this> {
    const jwks = [];
    for (const alg of ['RS256', 'ES256'] as const) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const kid = `${alg.toLowerCase()}-1`;
      this.keys[alg] = { privateKey, kid };
      jwks.push({ ...(await exportJWK(publicKey)), kid, alg, use: 'sig' });
    }
    this.rogue = (await generateKeyPair('RS256')).privateKey;
    const body = JSON.stringify({ keys: jwks });
    this.server = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(body),
    );
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.jwksUrl = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/jwks.json`;
    return this;
  }

  token(
    claims: Record<string, unknown>,
    o: {
      alg?: 'RS256' | 'ES256';
      audience?: string;
      issuer?: string;
      expiresIn?: string;
      rogue?: boolean;
    } = {},
  ): Promise<string> {
    const alg = o.alg ?? 'RS256';
    const key = o.rogue ? this.rogue! : this.keys[alg].privateKey;
    return new SignJWT(claims)
      .setProtectedHeader({ alg, kid: this.keys[alg].kid })
      .setIssuer(o.issuer ?? this.issuer)
      .setAudience(o.audience ?? 'epreuve')
      .setSubject(String(claims.sub ?? 'someone@example.com'))
      .setIssuedAt()
      .setExpirationTime(o.expiresIn ?? '10m')
      .sign(key);
  }

  stop(): Promise<void> {
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
