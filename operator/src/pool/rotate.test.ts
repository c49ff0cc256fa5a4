import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { decodeSecretData, rotateInPlace, sandboxAddress } from './rotate.ts';

describe('where the operator reaches a claimed namespace’s databases', () => {
  it('is the sandbox’s Service by default', () => {
    const c = loadConfig({});
    expect(sandboxAddress(c, 'postgres', 'warehouse', 'epreuve-pool-a-b', 5432)).toEqual({
      host: 'warehouse.epreuve-pool-a-b.svc',
      port: 5432,
    });
    expect(sandboxAddress(c, 'mongo', 'events', 'ns', 27017)).toEqual({ host: 'events.ns.svc', port: 27017 });
  });

  it('follows EPREUVE_POOL_*_ADDRESS, each kind its own', () => {
    const c = loadConfig({
      EPREUVE_POOL_POSTGRES_ADDRESS: '127.0.0.1:15432',
      EPREUVE_POOL_MONGO_ADDRESS: '{service}-{namespace}.example:{port}',
    });
    expect(sandboxAddress(c, 'postgres', 'warehouse', 'ns', 5432)).toEqual({
      host: '127.0.0.1',
      port: 15432,
    });
    expect(sandboxAddress(c, 'mongo', 'events', 'ns', 27017)).toEqual({
      host: 'events-ns.example',
      port: 27017,
    });
  });

  it('refuses an address without a port, naming the variable', () => {
    expect(() => loadConfig({ EPREUVE_POOL_POSTGRES_ADDRESS: 'db.example' })).toThrow(
      /EPREUVE_POOL_POSTGRES_ADDRESS: must be host:port/,
    );
  });
});

describe('rotateInPlace', () => {
  const target = { sandbox: 'warehouse', kind: 'postgres' as const, host: '127.0.0.1', port: 1 };

  it('decodes a Secret’s data', () => {
    expect(decodeSecretData({ password: Buffer.from('s3cr=t').toString('base64') })).toEqual({
      password: 's3cr=t',
    });
    expect(decodeSecretData(undefined)).toEqual({});
  });

  it('names the sandbox and the keys its Secret lacks', async () => {
    await expect(rotateInPlace(target, { username: 'candidate' }, { timeoutMs: 100 })).rejects.toThrow(
      'rotating warehouse (postgres at 127.0.0.1:1): its Secret has no password, admin-username, admin-password, database',
    );
  });

  it('gives up within its timeout on a server that never answers, naming the sandbox', async () => {
    // Accepts connections and says nothing: what a database behind a dropped route looks like.
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const creds = {
      username: 'candidate',
      password: 'new',
      'admin-username': 'postgres',
      'admin-password': 'admin',
      database: 'sandbox',
    };
    const started = Date.now();
    try {
      await expect(rotateInPlace({ ...target, port }, creds, { timeoutMs: 300 })).rejects.toThrow(
        /rotating warehouse \(postgres at 127\.0\.0\.1:\d+\) failed: .*timeout/i,
      );
      await expect(
        rotateInPlace({ ...target, sandbox: 'events', kind: 'mongo', port }, creds, { timeoutMs: 300 }),
      ).rejects.toThrow(/rotating events \(mongo at 127\.0\.0\.1:\d+\) failed/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      silent.close();
    }
  });
});
