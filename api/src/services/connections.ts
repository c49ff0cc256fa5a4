/**
 * Where a candidate's own tools reach each sandbox, and the snippets they paste: pure functions of
 * the sandbox's status, its credentials and the gateway settings.
 */
import {
  DATA_API_CREDENTIAL_KEYS as API_KEYS,
  DB_CREDENTIAL_KEYS as KEYS,
  sandboxHostLabel,
} from '@epreuve/crds';

/** Where a candidate's own tools reach a sandbox: through the gateway, or (no gateway) directly. */
export interface Endpoint {
  host: string;
  port: number;
  /** none: plain (in-cluster only); trusted: a publicly trusted certificate; private: encrypted, self-signed. */
  tls: 'none' | 'trusted' | 'private';
  /** Connect to this IP address, sending `host` as the TLS server name (no DNS record for it). */
  address?: string;
}

export interface GatewaySettings {
  domain: string;
  port: number;
  certTrusted: boolean;
  /** Where to connect when the domain has no DNS record; the name still routes (SNI). */
  address?: string;
}

/**
 * The endpoint the candidate page shows for one sandbox (pure). Through the gateway the host is
 * `<sandbox>-<hostKey>.<domain>`: undefined until the operator has drawn the assessment's host key
 * (the page then shows the sandbox as not reachable yet, as it does while it starts).
 */
export function candidateEndpoint(
  hostKey: string | undefined,
  sandbox: { name: string; host?: string; port?: number },
  inClusterHost: string,
  gateway: GatewaySettings | undefined,
): Endpoint | undefined {
  if (!gateway) return { host: sandbox.host ?? inClusterHost, port: sandbox.port ?? 0, tls: 'none' };
  if (!hostKey) return undefined;
  return {
    host: `${sandboxHostLabel(hostKey, sandbox.name)}.${gateway.domain}`,
    port: gateway.port,
    tls: gateway.certTrusted ? 'trusted' : 'private',
    ...(gateway.address ? { address: gateway.address } : {}),
  };
}

/** Connection snippets the candidate can paste: psql, mongosh, curl and Python. */
export function snippets(kind: string, at: Endpoint, c: Record<string, string>): Record<string, string> {
  const user = encodeURIComponent(c[KEYS.username] ?? '');
  const pwd = encodeURIComponent(c[KEYS.password] ?? '');
  const database = c[KEYS.database];
  const { host, port, tls, address } = at;
  // Without a DNS record: tools that can connect to an address while naming the host get it.
  const hosts: Record<string, string> = address ? { hostsEntry: `${address} ${host}` } : {};
  switch (kind) {
    case 'postgres': {
      // libpq before 16 cannot verify against the system CAs; sslmode=require encrypts everywhere.
      const params = [
        ...(tls === 'none' ? [] : ['sslmode=require']),
        ...(address ? [`hostaddr=${address}`] : []),
      ];
      const url = `postgresql://${user}:${pwd}@${host}:${port}/${database}${params.length ? `?${params.join('&')}` : ''}`;
      return {
        url,
        psql: `psql "${url}"`,
        python: `import psycopg\nconn = psycopg.connect("${url}")`,
        ...hosts,
      };
    }
    case 'mongo': {
      const tlsParams =
        tls === 'none' ? '' : `&tls=true${tls === 'private' ? '&tlsAllowInvalidCertificates=true' : ''}`;
      const url = `mongodb://${user}:${pwd}@${host}:${port}/${database}?authSource=${database}&directConnection=true${tlsParams}`;
      return {
        url,
        mongosh: `mongosh "${url}"`,
        python: `from pymongo import MongoClient\ndb = MongoClient("${url}")["${database}"]`,
        ...hosts,
      };
    }
    default: {
      const url = `${tls === 'none' ? 'http' : 'https'}://${host}:${port}`;
      const insecure = tls === 'private';
      return {
        url,
        curl: `curl ${insecure ? '-k ' : ''}${address ? `--connect-to ${host}:${port}:${address}:${port} ` : ''}-H "X-API-Key: ${c[API_KEYS.apiKey]}" "${url}/v1/customers?limit=100"`,
        python: `import requests\nr = requests.get("${url}/v1/customers", headers={"X-API-Key": "${c[API_KEYS.apiKey]}"}, params={"limit": 100}${insecure ? ', verify=False' : ''})`,
        ...hosts,
      };
    }
  }
}
