import { describe, expect, it } from 'vitest';
import { copyField, copyLine } from './copy.ts';

describe('COPY text encoding', () => {
  it('writes NULL as \\N and keeps plain text as is', () => {
    expect(copyField(null)).toBe('\\N');
    expect(copyField(undefined)).toBe('\\N');
    expect(copyField('Zoë Dupont')).toBe('Zoë Dupont');
    expect(copyField('')).toBe('');
  });

  it('escapes what could end a field or a row, and a literal \\N', () => {
    expect(copyField('a\tb')).toBe('a\\tb');
    expect(copyField('a\nb\rc')).toBe('a\\nb\\rc');
    expect(copyField('C:\\temp')).toBe('C:\\\\temp');
    // The two characters backslash-N are data, not NULL, once escaped.
    expect(copyField('\\N')).toBe('\\\\N');
  });

  it('writes numbers, booleans and dates as PostgreSQL parses them', () => {
    expect(copyField(42)).toBe('42');
    expect(copyField(-1.5)).toBe('-1.5');
    expect(copyField(9007199254740993n)).toBe('9007199254740993');
    expect(copyField(true)).toBe('t');
    expect(copyField(false)).toBe('f');
    expect(copyField(new Date('2024-03-01T10:00:00Z'))).toBe('2024-03-01T10:00:00.000Z');
  });

  it('refuses values that are not data, naming them', () => {
    expect(() => copyField(Number.NaN)).toThrow(/cannot COPY the number NaN/);
    expect(() => copyField(Number.POSITIVE_INFINITY)).toThrow(/cannot COPY the number Infinity/);
    expect(() => copyField({ a: 1 })).toThrow(/cannot COPY a value of type object: \{"a":1\}/);
  });

  it('joins a row in column order, tab separated and newline terminated', () => {
    expect(copyLine({ b: 'x', a: 1, c: null }, ['a', 'b', 'c'])).toBe('1\tx\t\\N\n');
    expect(copyLine({ a: 1 }, ['a', 'missing'])).toBe('1\t\\N\n');
  });
});
