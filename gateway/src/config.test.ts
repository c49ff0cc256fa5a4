import { describe, expect, it } from 'vitest';
import { loadGatewayConfig } from './config.ts';

describe('gateway configuration', () => {
  const base = {
    EPREUVE_GATEWAY_DOMAIN: 'sandbox.example.com',
    EPREUVE_GATEWAY_TLS_CERT_FILE: '/tls/tls.crt',
    EPREUVE_GATEWAY_TLS_KEY_FILE: '/tls/tls.key',
  };
  it('has sane defaults', () => {
    expect(loadGatewayConfig(base)).toMatchObject({
      EPREUVE_GATEWAY_PORT: 8443,
      EPREUVE_GATEWAY_MAX_CONNECTIONS: 4096,
      EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_CLIENT: 64,
      EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX: 20,
      EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX: 5,
      EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX: 20,
      EPREUVE_GATEWAY_IDLE_TIMEOUT_SECONDS: 1800,
      EPREUVE_GATEWAY_UNAUTHENTICATED_IDLE_SECONDS: 30,
      EPREUVE_GATEWAY_RECHECK_MS: 1000,
      EPREUVE_GATEWAY_SIGNALS_INTERVAL_MS: 5000,
    });
  });
  it.each([
    [{}, /EPREUVE_GATEWAY_DOMAIN[\s\S]*EPREUVE_GATEWAY_TLS_CERT_FILE[\s\S]*EPREUVE_GATEWAY_TLS_KEY_FILE/],
    [{ ...base, EPREUVE_GATEWAY_DOMAIN: 'https://x.com' }, /EPREUVE_GATEWAY_DOMAIN: must be a DNS name/],
    [{ ...base, EPREUVE_GATEWAY_PORT: '70000' }, /EPREUVE_GATEWAY_PORT/],
    [
      { ...base, EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX: '0' },
      /EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX/,
    ],
    [{ ...base, EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX: '-1' }, /EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX/],
    [
      { ...base, EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX: '0' },
      /EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX/,
    ],
    [
      {
        ...base,
        EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX: '8',
        EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX: '6',
      },
      /EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX: must be at least EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX/,
    ],
    [
      { ...base, EPREUVE_GATEWAY_UNAUTHENTICATED_IDLE_SECONDS: '0' },
      /EPREUVE_GATEWAY_UNAUTHENTICATED_IDLE_SECONDS/,
    ],
    [{ ...base, EPREUVE_GATEWAY_RECHECK_MS: '60000' }, /EPREUVE_GATEWAY_RECHECK_MS/],
    [{ ...base, EPREUVE_GATEWAY_SIGNALS_INTERVAL_MS: '10' }, /EPREUVE_GATEWAY_SIGNALS_INTERVAL_MS/],
  ])('names every bad variable: %j', (env, message) => {
    expect(() => loadGatewayConfig(env)).toThrow(message);
  });
});
