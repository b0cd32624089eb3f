// @vitest-environment jsdom
import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import '../test/dom';
import { blast } from '../test/blastFixture';
import { createMockPosture, setPostureApi } from '../lib/posture';
import { RESOURCE_STEP } from '../lib/blastGraph';
import { Blast } from './Blast';

function withBlast(n: number) {
  const mock = createMockPosture();
  setPostureApi({ ...mock, blast: async () => blast(n) });
}

const resources = () => document.querySelectorAll('[data-node][data-kind=resource]').length;
const node = (id: string) => document.querySelector<SVGGElement>(`[data-node="${id}"]`)!;

describe('Blast radius graph', () => {
  it('says how many resources are not drawn and reveals them', async () => {
    withBlast(90);
    render(<Blast id={1} />);
    await waitFor(() => screen.getByTestId('blast-graph'));
    expect(resources()).toBe(RESOURCE_STEP);
    expect(screen.getByTestId('blast-hidden').textContent).toContain(`${90 - RESOURCE_STEP} more resources in reach not shown`);
    fireEvent.click(screen.getByTestId('blast-show-more'));
    await waitFor(() => expect(resources()).toBe(2 * RESOURCE_STEP));
    fireEvent.click(screen.getByTestId('blast-show-all'));
    await waitFor(() => expect(resources()).toBe(90));
    expect(screen.getByTestId('blast-hidden').textContent).toContain('All 90 resources');
    fireEvent.click(screen.getByTestId('blast-show-fewer'));
    await waitFor(() => expect(resources()).toBe(RESOURCE_STEP));
  });

  it('clicking a node focuses its chains and dims the rest; Esc shows all again', async () => {
    withBlast(3);
    render(<Blast id={1} />);
    await waitFor(() => screen.getByTestId('blast-graph'));
    expect(document.querySelectorAll('.blast-node.is-dim')).toHaveLength(0);
    fireEvent.click(node('i3'));
    expect(node('i3').getAttribute('aria-pressed')).toBe('true');
    expect(screen.getByTestId('blast-focus').textContent).toContain('role-b');
    const dim = [...document.querySelectorAll('.blast-node.is-dim')].map((n) => n.getAttribute('data-node')).sort();
    expect(dim).toEqual(['i2', 'i4', 'r100', 'r102']);
    expect(node('i1').classList.contains('is-dim')).toBe(false);
    fireEvent.keyDown(node('i3'), { key: 'Escape' });
    expect(document.querySelectorAll('.blast-node.is-dim')).toHaveLength(0);
  });

  it('keyboard: one tab stop, arrows follow the links, Enter focuses, + and − zoom', async () => {
    withBlast(3);
    render(<Blast id={1} />);
    await waitFor(() => screen.getByTestId('blast-graph'));
    const stops = [...document.querySelectorAll('[data-node]')].filter((n) => n.getAttribute('tabindex') === '0');
    expect(stops.map((n) => n.getAttribute('data-node'))).toEqual(['i1']);
    node('i1').focus();
    fireEvent.keyDown(node('i1'), { key: 'ArrowRight' });
    await waitFor(() => expect(['i2', 'i3']).toContain((document.activeElement as Element).getAttribute('data-node')));
    const at = (document.activeElement as Element).getAttribute('data-node')!;
    expect(node(at).getAttribute('tabindex')).toBe('0');
    expect(node('i1').getAttribute('tabindex')).toBe('-1');
    fireEvent.keyDown(node(at), { key: 'Enter' });
    expect(node(at).getAttribute('aria-pressed')).toBe('true');
    expect(document.querySelectorAll('.blast-node.is-dim').length).toBeGreaterThan(0);
    const level = () => screen.getByTestId('zoom-level').textContent;
    const before = level();
    fireEvent.keyDown(node(at), { key: '+' });
    expect(level()).not.toBe(before);
    fireEvent.click(screen.getByTestId('zoom-out'));
    fireEvent.click(screen.getByTestId('zoom-fit'));
    expect(level()).toBe(before);
  });

  it('a conditional link is drawn dashed, labelled conditional, and its condition and reason are listed as text', async () => {
    const b = blast(3);
    const hostile = '<img src=x onerror=alert(1)>';
    b.reachable[1].chain[1] = { ...b.reachable[1].chain[1], condition: `only if Bool aws:MultiFactorAuthPresent=true ${hostile}` };
    b.reachable[2].chain[2] = { ...b.reachable[2].chain[2], reason: 'iam:PassRole to ec2.amazonaws.com, then ec2:RunInstances' };
    const mock = createMockPosture();
    setPostureApi({ ...mock, blast: async () => b });
    render(<Blast id={1} />);
    const table = await waitFor(() => screen.getByTestId('blast-chain-conditions'));
    const rows = [...table.querySelectorAll('tbody tr')].map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent));
    expect(rows).toEqual([
      ['agent', 'role-b', 'assume_role', `only if Bool aws:MultiFactorAuthPresent=true ${hostile}`, ''],
      ['role-a', 'svc-c', 'calls', 'always', 'iam:PassRole to ec2.amazonaws.com, then ec2:RunInstances'],
    ]);
    expect(table.querySelector('img')).toBeNull();
    const edge = document.querySelector('[data-edge="i1>i3"]')!;
    expect(edge.classList.contains('is-conditional')).toBe(true);
    expect(edge.querySelector('path')!.getAttribute('stroke-dasharray')).toBe('4 3');
    expect(edge.querySelector('text')!.textContent).toBe('assume_role · conditional');
    expect(edge.querySelector('title')!.textContent).toContain('only if Bool aws:MultiFactorAuthPresent=true');
    expect(document.querySelector('[data-edge="i1>i2"]')!.classList.contains('is-conditional')).toBe(false);
  });

  it("a resource's title names each permission with what it holds under", async () => {
    const b = blast(1);
    b.resources[0].permissions = [
      { permission: 's3:* (through the grant on *)', privilege: 'write', high_consequence: true, holder: 'role-a', condition: 'unless Bool aws:MultiFactorAuthPresent=false' },
    ];
    const mock = createMockPosture();
    setPostureApi({ ...mock, blast: async () => b });
    render(<Blast id={1} />);
    await waitFor(() => screen.getByTestId('blast-graph'));
    expect(node('r100').querySelector('title')!.textContent).toBe(
      `${b.resources[0].name}: s3:* (through the grant on *), unless Bool aws:MultiFactorAuthPresent=false`,
    );
  });

  it('lists no conditions when no link has any', async () => {
    withBlast(3);
    render(<Blast id={1} />);
    await waitFor(() => screen.getByTestId('blast-graph'));
    expect(screen.queryByTestId('blast-chain-conditions')).toBeNull();
  });

  it('wheel zooms and dragging the background pans', async () => {
    withBlast(3);
    render(<Blast id={1} />);
    const svg = await waitFor(() => screen.getByTestId('blast-graph'));
    const inner = () => svg.querySelector(':scope > g')!.getAttribute('transform');
    const t0 = inner();
    fireEvent.wheel(svg, { deltaY: -200, clientX: 10, clientY: 10 });
    const t1 = inner();
    expect(t1).not.toBe(t0);
    fireEvent.pointerDown(svg, { clientX: 100, clientY: 100, pointerId: 1 });
    fireEvent.pointerMove(svg, { clientX: 160, clientY: 130, pointerId: 1 });
    fireEvent.pointerUp(svg, { pointerId: 1 });
    expect(inner()).not.toBe(t1);
  });
});
