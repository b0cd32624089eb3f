import { describe, expect, it } from 'vitest';
import { sparkline } from './posture';

describe('sparkline', () => {
  it('scales a series into the box, lowest at the bottom', () => {
    expect(sparkline([0, 5, 10], 100, 20)).toBe('0.0,20.0 50.0,10.0 100.0,0.0');
    expect(sparkline([3, 3], 10, 10)).toBe('0.0,10.0 10.0,10.0');
    expect(sparkline([], 10, 10)).toBe('');
  });
});
