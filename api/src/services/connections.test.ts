import { describe, expect, it } from 'vitest';
import type { Endpoint } from './connections.ts';
import { candidateEndpoint, snippets } from './connections.ts';

const sandbox = { name: 'warehouse', host: 'warehouse.epreuve-jane-doe-abcde.svc', port: 5432 };
const KEY = 'abcdefghijklmnop';
const creds = { username: 'candidate', password: 'p@ss word', database: 'retail', 'api-key': 'k3y' };

describe('candidateEndpoint', () => {
  it('is the in-cluster address when no gateway is configured', () => {
    expect(candidateEndpoint(KEY, sandbox, 'fallback.svc', undefined)).toEqual({
      host: 'warehouse.epreuve-jane-doe-abcde.svc',
      port: 5432,
      tls: 'none',
    });
  });

  it('is the sandbox’s name under the gateway’s domain and port when there is one', () => {
    const at = candidateEndpoint(KEY, sandbox, 'x', {
      domain: 'sandbox.example.com',
      port: 443,
      certTrusted: true,
    });
    expect(at).toEqual({
      host: 'warehouse-abcdefghijklmnop.sandbox.example.com',
      port: 443,
      tls: 'trusted',
    });
  });

  it('has no gateway host before the operator drew the host key (never a derivable name)', () => {
    const gateway = { domain: 'sandbox.example.com', port: 443, certTrusted: true };
    expect(candidateEndpoint(undefined, sandbox, 'x', gateway)).toBeUndefined();
    // Without a gateway the in-cluster address needs no key.
    expect(candidateEndpoint(undefined, sandbox, 'x', undefined)?.host).toBe(sandbox.host);
  });
});

describe('snippets', () => {
  const gw = { host: 'warehouse-abcdefgh.sandbox.example.com', port: 443 };
  it('asks psql for TLS through the gateway, and escapes credentials', () => {
    expect(snippets('postgres', { ...gw, tls: 'private' }, creds).psql).toBe(
      'psql "postgresql://candidate:p%40ss%20word@warehouse-abcdefgh.sandbox.example.com:443/retail?sslmode=require"',
    );
    expect(snippets('postgres', { host: 'h', port: 5432, tls: 'none' }, creds).psql).toBe(
      'psql "postgresql://candidate:p%40ss%20word@h:5432/retail"',
    );
  });

  it('asks mongosh for TLS, and accepts a self-signed gateway certificate only when told it is one', () => {
    expect(snippets('mongo', { ...gw, tls: 'private' }, creds).url).toMatch(
      /&tls=true&tlsAllowInvalidCertificates=true$/,
    );
    expect(snippets('mongo', { ...gw, tls: 'trusted' }, creds).url).toMatch(
      /directConnection=true&tls=true$/,
    );
    expect(snippets('mongo', { host: 'h', port: 27017, tls: 'none' }, creds).url).not.toMatch(/tls=/);
  });

  it('uses https for the data API through the gateway, skipping verification only for a self-signed certificate', () => {
    const priv = snippets('dataApi', { ...gw, tls: 'private' }, creds);
    expect(priv.curl).toBe(
      'curl -k -H "X-API-Key: k3y" "https://warehouse-abcdefgh.sandbox.example.com:443/v1/customers?limit=100"',
    );
    expect(priv.python).toMatch(/verify=False\)$/);
    const trusted = snippets('dataApi', { ...gw, tls: 'trusted' }, creds);
    expect(trusted.curl).not.toMatch(/-k/);
    expect(trusted.python).not.toMatch(/verify=False/);
  });
});

describe('a gateway without a DNS record (EPREUVE_GATEWAY_ADDRESS)', () => {
  const at = candidateEndpoint(KEY, sandbox, 'x', {
    domain: 'sandbox.epreuve.test',
    port: 30443,
    certTrusted: false,
    address: '10.244.0.1',
  }) as Endpoint;

  it('gives the address beside the name, which still selects the sandbox', () => {
    expect(at).toMatchObject({ port: 30443, tls: 'private', address: '10.244.0.1' });
    expect(at.host).toMatch(/\.sandbox\.epreuve\.test$/);
  });

  it('puts the address where each tool takes one, and an /etc/hosts line for the others', () => {
    const pg = snippets('postgres', at, creds);
    expect(pg.url).toBe(
      `postgresql://candidate:p%40ss%20word@${at.host}:30443/retail?sslmode=require&hostaddr=10.244.0.1`,
    );
    expect(pg.hostsEntry).toBe(`10.244.0.1 ${at.host}`);
    expect(snippets('dataApi', at, creds).curl).toContain(`--connect-to ${at.host}:30443:10.244.0.1:30443 `);
    expect(snippets('mongo', at, creds).hostsEntry).toBe(`10.244.0.1 ${at.host}`);
  });

  it('adds nothing when the domain has DNS', () => {
    const withDns = candidateEndpoint(KEY, sandbox, 'x', {
      domain: 'd.example',
      port: 443,
      certTrusted: true,
    }) as Endpoint;
    expect(withDns.address).toBeUndefined();
    expect(snippets('postgres', withDns, creds)).not.toHaveProperty('hostsEntry');
    expect(snippets('postgres', withDns, creds).url).not.toMatch(/hostaddr/);
  });
});
