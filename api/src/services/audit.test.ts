import type { Informer, KubeClient, KubeObject } from '@epreuve/kube';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../app.ts';
import { loadApiConfig } from '../config.ts';
import { type AssessmentObject, AssessmentStore, type TemplateObject } from './assessments.ts';
import { AuditTrail } from './audit.ts';
import { LinkSigner } from './links.ts';

const collect = () => {
  const lines: Array<Record<string, any>> = [];
  return { lines, trail: new AuditTrail({ write: (l: string) => void lines.push(JSON.parse(l)) }) };
};

describe('AuditTrail', () => {
  it('writes flat audit lines with actor, action, target fields and outcome', () => {
    const { lines, trail } = collect();
    trail.record({
      actor: 'ana@example.com',
      role: 'reviewer',
      action: 'interview.read',
      target: { team: 't', assessment: 'a' },
      outcome: 'allowed',
    });
    expect(lines[0]).toMatchObject({
      log: 'audit',
      msg: 'audit: interview.read',
      audit: {
        actor: 'ana@example.com',
        role: 'reviewer',
        action: 'interview.read',
        team: 't',
        assessment: 'a',
        outcome: 'allowed',
      },
    });
  });

  it('samples denials per source address: a flood cannot drown the trail', () => {
    const { lines, trail } = collect();
    const deny = (client: string, now: number) =>
      trail.deny({ actor: `anonymous:${client}`, action: 'GET /x', target: {}, client }, now);
    for (let i = 0; i < 1000; i++) deny('203.0.113.1', 1_000 + i);
    expect(lines).toHaveLength(10);
    expect(deny('198.51.100.2', 2_000)).toBe(true);
    expect(deny('203.0.113.1', 61_000)).toBe(true); // a new minute
    expect(lines.every((l) => l.audit.outcome === 'denied')).toBe(true);
  });

  it('audits credentials once per link and start, not per page refresh', () => {
    const { lines, trail } = collect();
    for (let i = 0; i < 5; i++)
      trail.credentialsHanded(
        { actor: 'candidate:t/a', target: { sandboxes: ['warehouse'] } },
        'uid/link-1/start-1',
      );
    trail.credentialsHanded(
      { actor: 'candidate:t/a', target: { sandboxes: ['warehouse'] } },
      'uid/link-2/start-1',
    );
    expect(lines.map((l) => l.audit.action)).toEqual(['candidate.credentials', 'candidate.credentials']);
  });

  it('is not silenced by the application log level', async () => {
    const { lines, trail } = collect();
    const informer = <T extends KubeObject>() =>
      ({ get: () => undefined, list: () => [], hasSynced: () => true }) as unknown as Informer<T>;
    const client = {} as KubeClient;
    const appLines: string[] = [];
    const app = await buildApp({
      config: loadApiConfig({}),
      client,
      store: new AssessmentStore(client, informer<AssessmentObject>(), informer<TemplateObject>()),
      links: await LinkSigner.ephemeral(),
      logger: pino({ level: 'warn' }, { write: (l: string) => void appLines.push(l) }),
      audit: trail,
    });
    const res = await app.inject({
      url: '/api/v1/teams/t/assessments',
      headers: { authorization: 'Bearer epk_wrong-key-0123456789abcdefghij' },
    });
    await app.close();
    expect(res.statusCode).toBe(401);
    expect(appLines.filter((l) => l.includes('"audit"'))).toEqual([]);
    expect(lines).toEqual([
      expect.objectContaining({
        audit: expect.objectContaining({
          outcome: 'denied',
          action: 'GET /api/v1/teams/:team/assessments',
          status: 401,
          team: 't',
        }),
      }),
    ]);
  });
});
