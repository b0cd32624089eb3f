import { describe, expect, it } from 'vitest';
import { ago, agoShort, ageTone, daysSince, expiryText, formatCount, formatDate, formatDays, labelOf, KIND_LABELS, owaspLabel, plural } from './format';

const NOW = Date.parse('2025-06-15T12:00:00Z');
const daysBefore = (d: number) => new Date(NOW - d * 86_400_000).toISOString();

describe('counts', () => {
  it('groups thousands', () => {
    expect(formatCount(100000)).toBe('100,000');
    expect(formatCount(0)).toBe('0');
    expect(plural(1, 'day')).toBe('1 day');
    expect(plural(2, 'day')).toBe('2 days');
    expect(plural(1000, 'identity', 'identities')).toBe('1,000 identities');
  });
});

describe('expiryText', () => {
  it('highlights secrets that never expire', () => {
    expect(expiryText(null)).toEqual({ text: 'never', tone: 'warn' });
  });
  it('says how long ago a secret expired', () => {
    expect(expiryText(-1)).toEqual({ text: 'expired 1 day ago', tone: 'bad' });
    expect(expiryText(-400)).toEqual({ text: 'expired 400 days ago', tone: 'bad' });
  });
  it('says how long until expiry, warning inside 30 days', () => {
    expect(expiryText(0)).toEqual({ text: 'expires today', tone: 'bad' });
    expect(expiryText(1)).toEqual({ text: 'in 1 day', tone: 'warn' });
    expect(expiryText(30).tone).toBe('warn');
    expect(expiryText(90)).toEqual({ text: 'in 90 days', tone: 'ok' });
  });
});

describe('ages', () => {
  it('computes whole days since a timestamp', () => {
    expect(daysSince(daysBefore(3), NOW)).toBe(3);
    expect(daysSince(new Date(NOW - 3.9 * 86_400_000).toISOString(), NOW)).toBe(3);
    expect(daysSince(null, NOW)).toBeNull();
    expect(daysSince('not a date', NOW)).toBeNull();
  });

  it('describes a past time in words', () => {
    expect(ago(null, NOW)).toBe('never');
    expect(ago(daysBefore(0), NOW)).toBe('today');
    expect(ago(daysBefore(1), NOW)).toBe('yesterday');
    expect(ago(daysBefore(12), NOW)).toBe('12 days ago');
    expect(ago(daysBefore(100), NOW)).toBe('3 months ago');
    expect(ago(daysBefore(800), NOW)).toBe('2 years ago');
  });

  it('has a compact form for tables', () => {
    expect(agoShort(null, NOW)).toBe('—');
    expect(agoShort(daysBefore(5), NOW)).toBe('5d');
    expect(agoShort(daysBefore(200), NOW)).toBe('6mo');
    expect(agoShort(daysBefore(1100), NOW)).toBe('3y');
  });

  it('formats days and dates', () => {
    expect(formatDays(null)).toBe('—');
    expect(formatDays(1412)).toBe('1,412 d');
    expect(formatDate('2024-03-05T23:59:00Z')).toBe('2024-03-05');
    expect(formatDate(null)).toBe('—');
  });

  it('grades credential age', () => {
    expect(ageTone(10)).toBe('ok');
    expect(ageTone(200)).toBe('warn');
    expect(ageTone(366)).toBe('bad');
    expect(ageTone(null)).toBe('muted');
  });
});

describe('labels', () => {
  it('labels OWASP categories and enum values', () => {
    expect(owaspLabel('NHI7', 'Long-Lived Secrets')).toBe('NHI7 Long-Lived Secrets');
    expect(owaspLabel('NHI99', '')).toBe('NHI99');
    expect(labelOf(KIND_LABELS, 'ai_agent')).toBe('AI agent');
    expect(labelOf(KIND_LABELS, 'quantum_thing')).toBe('quantum thing');
    expect(labelOf(KIND_LABELS, null)).toBe('—');
  });
});

describe('shortSource', () => {
  it('drops the parenthesised tenant', async () => {
    const { shortSource } = await import('./format');
    expect(shortSource('Entra ID (contoso.example)')).toBe('Entra ID');
    expect(shortSource('GitHub contoso')).toBe('GitHub contoso');
  });
});
