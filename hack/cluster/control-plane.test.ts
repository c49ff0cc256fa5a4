import { describe, expect, it } from 'vitest';
import { startTimeoutMs } from './control-plane.ts';

describe('startTimeoutMs (envtest KUBEBUILDER_CONTROLPLANE_START_TIMEOUT)', () => {
  it('defaults to 90 s and reads Go durations', () => {
    expect(startTimeoutMs(undefined)).toBe(90_000);
    expect(startTimeoutMs('')).toBe(90_000);
    expect(startTimeoutMs('60s')).toBe(60_000);
    expect(startTimeoutMs('2m')).toBe(120_000);
    expect(startTimeoutMs('1m30s')).toBe(90_000);
    expect(startTimeoutMs('1.5h')).toBe(5_400_000);
    expect(startTimeoutMs('2500ms')).toBe(2500);
  });

  it.each(['90', '90 s', 'soon', '1m30', '-5s'])('refuses %j, naming the variable', (v) => {
    expect(() => startTimeoutMs(v)).toThrow(
      `KUBEBUILDER_CONTROLPLANE_START_TIMEOUT: "${v}" is not a Go duration (e.g. "90s", "2m", "1m30s")`,
    );
  });
});
