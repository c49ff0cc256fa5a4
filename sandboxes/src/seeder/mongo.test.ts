import type { Db } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { ensureUsers, onUserCommandError, rolelessRefused, rolesNotEnforcedWarning } from './mongo.ts';

describe('onUserCommandError', () => {
  it.each([
    [59, true, 'skip-users'],
    [59, false, 'skip-users'],
    [238, true, 'retry-without-roles'],
    [238, false, 'fail'],
    [13, true, 'fail'],
    [11000, true, 'fail'],
    [undefined, true, 'fail'],
  ] as const)('code %s, with roles %s → %s', (code, withRoles, expected) => {
    expect(onUserCommandError(code, withRoles)).toBe(expected);
  });
});

it('the warning names the user, the server, the role it was meant to have and the consequence', () => {
  const w = rolesNotEnforcedWarning('candidate', 'readWrite on sandbox', 'FerretDB v1.24.0');
  expect(w).toMatch(/^WARNING/);
  expect(w).toContain('"candidate"');
  expect(w).toContain('FerretDB v1.24.0');
  expect(w).toContain('roles are not enforced by this server');
  expect(w).toContain('readWrite on sandbox');
  expect(w).toContain('may read and write every database');
});

/** A fake Db (unit tier only): records commands, answers them with `answer`. */
function fakeDb(answer: (cmd: Record<string, unknown>) => unknown) {
  const commands: Array<Record<string, unknown>> = [];
  const run = async (cmd: Record<string, unknown>) => {
    commands.push(cmd);
    const res = answer(cmd);
    if (res instanceof Error) throw res;
    return res;
  };
  const db = { command: run, admin: () => ({ command: run }) } as unknown as Db;
  return { db, commands };
}
const codeError = (code: number, message = `code ${code}`) => Object.assign(new Error(message), { code });
const opts = {
  database: 'sandbox',
  candidate: { username: 'candidate', password: 'c-secret' },
  grader: { username: 'grader', password: 'g-secret' },
};
/** A local cluster's opt-in (sandboxes.mongo.allowRolelessUsers). */
const optedIn = { ...opts, allowRolelessUsers: true };
const userCommands = (commands: Array<Record<string, unknown>>) =>
  commands.filter((c) => 'createUser' in c || 'updateUser' in c);

describe('ensureUsers', () => {
  it('with roles where the server has them (MongoDB): no retry, no warning, no buildInfo', async () => {
    const { db, commands } = fakeDb((c) => ('usersInfo' in c ? { users: [] } : { ok: 1 }));
    const log: string[] = [];
    await ensureUsers(db, opts, (l) => log.push(l));
    expect(userCommands(commands)).toEqual([
      { createUser: 'candidate', pwd: 'c-secret', roles: [{ role: 'readWrite', db: 'sandbox' }] },
      { createUser: 'grader', pwd: 'g-secret', roles: [{ role: 'read', db: 'sandbox' }] },
    ]);
    expect(commands.some((c) => 'buildInfo' in c)).toBe(false);
    expect(log).toEqual(['mongo: users candidate (readWrite) and grader (read) ready']);
  });

  it('on 238, the same command again without roles, and one warning per user', async () => {
    const { db, commands } = fakeDb((c) => {
      if ('usersInfo' in c) return { users: c.usersInfo === 'grader' ? [{}] : [] };
      if ('buildInfo' in c) return { version: '7.0.77', ferretdbVersion: 'v1.24.0' };
      return (c.roles as unknown[]).length
        ? codeError(238, 'support for field "roles" is not implemented yet')
        : { ok: 1 };
    });
    const log: string[] = [];
    await ensureUsers(db, optedIn, (l) => log.push(l));
    expect(userCommands(commands)).toEqual([
      { createUser: 'candidate', pwd: 'c-secret', roles: [{ role: 'readWrite', db: 'sandbox' }] },
      { createUser: 'candidate', pwd: 'c-secret', roles: [] },
      { updateUser: 'grader', pwd: 'g-secret', roles: [{ role: 'read', db: 'sandbox' }] },
      { updateUser: 'grader', pwd: 'g-secret', roles: [] },
    ]);
    expect(log).toEqual([
      rolesNotEnforcedWarning('candidate', 'readWrite on sandbox', 'FerretDB v1.24.0'),
      rolesNotEnforcedWarning('grader', 'read on sandbox', 'FerretDB v1.24.0'),
      'mongo: users candidate and grader ready (roles not enforced by this server)',
    ]);
    expect(log.join('\n')).not.toMatch(/secret/);
  });

  it('names the server "this server" when buildInfo fails', async () => {
    const { db } = fakeDb((c) => {
      if ('usersInfo' in c) return { users: [] };
      if ('buildInfo' in c) return codeError(13);
      return (c.roles as unknown[]).length ? codeError(238) : { ok: 1 };
    });
    const log: string[] = [];
    await ensureUsers(db, optedIn, (l) => log.push(l));
    expect(log[0]).toContain('this server does not implement roles');
  });

  it('fails, naming the user, when the retry without roles is refused too', async () => {
    const { db } = fakeDb((c) =>
      'usersInfo' in c
        ? { users: [] }
        : (c.roles as unknown[]).length
          ? codeError(238)
          : codeError(2, 'bad pwd'),
    );
    await expect(ensureUsers(db, optedIn, () => {})).rejects.toThrow(
      /user "candidate": the server refused roles \(code 238\), then the user without roles: bad pwd/,
    );
  });

  it('skips users on 59 (no user management), from usersInfo or createUser', async () => {
    for (const failing of ['usersInfo', 'createUser']) {
      const { db, commands } = fakeDb((c) =>
        failing in c ? codeError(59) : 'usersInfo' in c ? { users: [] } : { ok: 1 },
      );
      const log: string[] = [];
      await ensureUsers(db, optedIn, (l) => log.push(l));
      expect(log).toEqual(['mongo: this server has no user management; candidate and grader users skipped']);
      expect(userCommands(commands).length).toBeLessThanOrEqual(1);
    }
  });

  it('without the opt-in, refuses users without roles on 238, naming the server and the chart value', async () => {
    const { db, commands } = fakeDb((c) => {
      if ('usersInfo' in c) return { users: [] };
      if ('buildInfo' in c) return { version: '7.0.77', ferretdbVersion: 'v1.24.0' };
      return (c.roles as unknown[]).length ? codeError(238) : { ok: 1 };
    });
    const log: string[] = [];
    await expect(ensureUsers(db, opts, (l) => log.push(l))).rejects.toThrow(
      rolelessRefused('FerretDB v1.24.0', 238),
    );
    // The user with roles was asked for, and no user without roles was created.
    expect(userCommands(commands)).toEqual([
      { createUser: 'candidate', pwd: 'c-secret', roles: [{ role: 'readWrite', db: 'sandbox' }] },
    ]);
    expect(log).toEqual([]);
  });

  it('without the opt-in, refuses a server without user management (59) too', async () => {
    const { db } = fakeDb((c) => ('usersInfo' in c ? codeError(59) : { ok: 1 }));
    await expect(ensureUsers(db, opts, () => {})).rejects.toThrow(/has no user management \(code 59\)/);
  });

  it('the refusal names the setting and the environment variable that accept it', () => {
    const m = rolelessRefused('FerretDB v1.24.0', 238);
    expect(m).toContain('FerretDB v1.24.0 does not implement roles (code 238)');
    expect(m).toContain('sandboxes.mongo.allowRolelessUsers=true');
    expect(m).toContain('EPREUVE_ALLOW_ROLELESS_USERS=true');
  });

  it('rethrows any other error unchanged (e.g. unauthorized)', async () => {
    const { db } = fakeDb((c) => ('usersInfo' in c ? { users: [] } : codeError(13, 'not authorized')));
    await expect(ensureUsers(db, opts, () => {})).rejects.toMatchObject({
      code: 13,
      message: 'not authorized',
    });
    const other = fakeDb((c) => ('usersInfo' in c ? codeError(238) : { ok: 1 }));
    await expect(ensureUsers(other.db, opts, () => {})).rejects.toMatchObject({ code: 238 });
  });
});
