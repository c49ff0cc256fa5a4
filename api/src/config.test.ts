import { describe, expect, it } from 'vitest';
import { loadApiConfig } from './config.ts';

describe('loadApiConfig: the gateway address', () => {
  it('takes an IPv4 or IPv6 address', () => {
    expect(loadApiConfig({ EPREUVE_GATEWAY_ADDRESS: '10.244.0.1' }).EPREUVE_GATEWAY_ADDRESS).toBe(
      '10.244.0.1',
    );
    expect(loadApiConfig({ EPREUVE_GATEWAY_ADDRESS: 'fd00::1' }).EPREUVE_GATEWAY_ADDRESS).toBe('fd00::1');
    expect(loadApiConfig({}).EPREUVE_GATEWAY_ADDRESS).toBeUndefined();
  });

  it('refuses a name, naming the variable', () => {
    expect(() => loadApiConfig({ EPREUVE_GATEWAY_ADDRESS: 'gateway.example.com' })).toThrow(
      /EPREUVE_GATEWAY_ADDRESS: must be an IP address/,
    );
  });
});
