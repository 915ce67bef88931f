// Drill report rendering: the table names every column and scenario; the SVG is well-formed and carries the
// data series and fault markers; rates are computed per window.
import { describe, expect, it } from 'vitest';
import { ioRate, renderSvg, renderTable, type DrillReport, type ScenarioResult } from '../../../src/drill/report.js';

function scenario(name: string, passed: boolean): ScenarioResult {
  const timeline = Array.from({ length: 40 }, (_, i) => ({ t: i * 250, reads: i >= 10 && i < 14 ? 0 : 100, writes: 50, errors: i === 10 ? 3 : 0 }));
  return {
    name,
    passed,
    acknowledged_writes: 2000,
    lost_writes: passed ? 0 : 2,
    stale_reads: 0,
    ghost_writes: 0,
    corrupt_reads: 0,
    failover_seconds: 1.25,
    faults_injected: 1,
    io_before: ioRate(timeline, 0, 2500),
    io_during: ioRate(timeline, 2500, 3500),
    io_after: ioRate(timeline, 3500, 10000),
    duration_seconds: 10,
    notes: [],
    markers: [
      { t: 2500, label: 'SIGKILL target A', kind: 'fault' },
      { t: 3500, label: 'A restarted', kind: 'recover' },
    ],
    timeline,
  };
}

describe('drill report', () => {
  const report: DrillReport = { started: '2026-11-22T06:00:00Z', host: 'test', passed: false, scenarios: [scenario('target-failover', true), scenario('sheep-kill', false)] };

  it('computes I/O rates per window', () => {
    expect(report.scenarios[0]!.io_before).toBe(600);
    expect(report.scenarios[0]!.io_during).toBe(200);
  });

  it('renders a table with one row per scenario and PASS/FAIL', () => {
    const t = renderTable(report);
    expect(t.split('\n')).toHaveLength(4);
    expect(t).toMatch(/^scenario\s+faults\s+io\/s before/);
    expect(t).toMatch(/target-failover .* PASS$/m);
    expect(t).toMatch(/sheep-kill .* FAIL$/m);
  });

  it('renders an SVG with a panel, three series and the fault markers per scenario', () => {
    const svg = renderSvg(report);
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(6);
    expect(svg).toContain('SIGKILL target A');
    expect(svg).toContain('sheep-kill — FAIL');
    expect(svg.match(/<svg /g)).toHaveLength(1);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
  });
});
