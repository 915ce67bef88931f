// Drill reports: per-scenario results, a terminal table, a JSON document and an SVG timeline (I/O rate over
// time with fault markers) a user can open in a browser.
import type { TimelineBucket } from './workload.js';

export interface FaultMarker {
  /** ms since the scenario's workload started */
  t: number;
  label: string;
  kind: 'fault' | 'recover' | 'info';
}

export interface ScenarioResult {
  name: string;
  passed: boolean;
  acknowledged_writes: number;
  lost_writes: number;
  stale_reads: number;
  ghost_writes: number;
  corrupt_reads: number;
  failover_seconds: number | null;
  faults_injected: number;
  /** Operations per second before, during and after the faults. */
  io_before: number;
  io_during: number;
  io_after: number;
  duration_seconds: number;
  notes: string[];
  markers: FaultMarker[];
  timeline: TimelineBucket[];
}

export interface DrillReport {
  started: string;
  host: string;
  passed: boolean;
  scenarios: ScenarioResult[];
}

/** Operations per second over the buckets in [fromMs, toMs). */
export function ioRate(timeline: readonly TimelineBucket[], fromMs: number, toMs: number): number {
  const span = timeline.filter((b) => b.t >= fromMs && b.t < toMs);
  if (span.length === 0 || toMs <= fromMs) return 0;
  const ops = span.reduce((a, b) => a + b.reads + b.writes, 0);
  return Math.round((ops * 1000) / (toMs - fromMs));
}

/** The human table printed at the end of a drill. */
export function renderTable(report: DrillReport): string {
  const head = ['scenario', 'faults', 'io/s before', 'during', 'after', 'failover s', 'acked writes', 'lost', 'stale', 'ghost', 'result'];
  const rows = report.scenarios.map((s) => [
    s.name,
    String(s.faults_injected),
    String(s.io_before),
    String(s.io_during),
    String(s.io_after),
    s.failover_seconds === null ? '-' : s.failover_seconds.toFixed(2),
    String(s.acknowledged_writes),
    String(s.lost_writes),
    String(s.stale_reads),
    String(s.ghost_writes),
    s.passed ? 'PASS' : 'FAIL',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The timeline with a zero bucket wherever no operation completed (so a stall draws as zero, not a slope). */
export function denseTimeline(timeline: readonly TimelineBucket[], bucketMs = 250): TimelineBucket[] {
  if (timeline.length === 0) return [];
  const byT = new Map(timeline.map((b) => [b.t, b]));
  const last = timeline[timeline.length - 1]!.t;
  const out: TimelineBucket[] = [];
  for (let t = 0; t <= last; t += bucketMs) out.push(byT.get(t) ?? { t, reads: 0, writes: 0, errors: 0 });
  return out;
}

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] ?? c);
}

/** An SVG with one panel per scenario: reads/s, writes/s and errors/s over time, fault markers as lines. */
export function renderSvg(report: DrillReport): string {
  const W = 960;
  const panelH = 220;
  const padL = 60;
  const padR = 20;
  const padT = 40;
  const padB = 40;
  const parts: string[] = [];
  report.scenarios.forEach((s, i) => {
    const y0 = i * (panelH + padT + padB) + padT;
    const tMax = Math.max(1000, ...s.timeline.map((b) => b.t + 250), ...s.markers.map((m) => m.t + 250));
    const bucketSec = 0.25;
    const rate = (b: TimelineBucket, k: 'reads' | 'writes' | 'errors'): number => b[k] / bucketSec;
    const yMax = Math.max(10, ...s.timeline.map((b) => rate(b, 'reads') + rate(b, 'writes')));
    const x = (t: number): number => padL + ((W - padL - padR) * t) / tMax;
    const y = (v: number): number => y0 + panelH - (panelH * v) / yMax;
    const dense = denseTimeline(s.timeline);
    const path = (k: 'reads' | 'writes' | 'errors'): string =>
      dense.map((b, j) => `${j === 0 ? 'M' : 'L'}${x(b.t).toFixed(1)},${y(rate(b, k)).toFixed(1)}`).join(' ');
    parts.push(
      `<text x="${padL}" y="${y0 - 12}" font-size="15" font-weight="bold">${esc(s.name)} — ${s.passed ? 'PASS' : 'FAIL'} ` +
        `(acked ${s.acknowledged_writes}, lost ${s.lost_writes}, stale ${s.stale_reads}, ghost ${s.ghost_writes}` +
        `${s.failover_seconds === null ? '' : `, failover ${s.failover_seconds.toFixed(2)} s`})</text>`,
      `<rect x="${padL}" y="${y0}" width="${W - padL - padR}" height="${panelH}" fill="#fafafa" stroke="#999"/>`,
    );
    for (let k = 0; k <= 4; k++) {
      const v = (yMax * k) / 4;
      parts.push(`<text x="${padL - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${Math.round(v)}</text>`);
      parts.push(`<line x1="${padL}" x2="${W - padR}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
    }
    for (let t = 0; t <= tMax; t += Math.max(1000, Math.ceil(tMax / 10000) * 1000)) {
      parts.push(`<text x="${x(t)}" y="${y0 + panelH + 14}" font-size="10" text-anchor="middle">${Math.round(t / 1000)}s</text>`);
    }
    s.markers.forEach((m, j) => {
      const color = m.kind === 'fault' ? '#d62728' : m.kind === 'recover' ? '#2ca02c' : '#7f7f7f';
      parts.push(`<line x1="${x(m.t)}" x2="${x(m.t)}" y1="${y0}" y2="${y0 + panelH}" stroke="${color}" stroke-dasharray="4 3"/>`);
      // Labels of nearby markers are staggered so they do not overwrite each other.
      parts.push(`<text x="${x(m.t) + 3}" y="${y0 + 12 + (j % 4) * 12}" font-size="10" fill="${color}">${esc(m.label)}</text>`);
    });
    if (s.timeline.length > 0) {
      parts.push(`<path d="${path('reads')}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`);
      parts.push(`<path d="${path('writes')}" fill="none" stroke="#ff7f0e" stroke-width="1.5"/>`);
      parts.push(`<path d="${path('errors')}" fill="none" stroke="#d62728" stroke-width="1"/>`);
    }
    parts.push(
      `<text x="${W - padR - 200}" y="${y0 + panelH + 30}" font-size="11"><tspan fill="#1f77b4">reads/s</tspan>  <tspan fill="#ff7f0e">writes/s</tspan>  <tspan fill="#d62728">errors/s</tspan></text>`,
    );
  });
  const H = report.scenarios.length * (panelH + padT + padB) + 20;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`
  );
}
