// The drill's SVG timeline renders in a real browser: headless Chromium screenshots it and the picture is not
// blank (it has axes, series and markers in several colours).
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { renderSvg, type DrillReport } from '../../src/drill/report.js';
import { screenshot } from '../helpers/chromium.js';
import { decodePng, inkStats } from '../helpers/png.js';
import { cleanupTempDirs, tempDir } from '../helpers/proc.js';

afterAll(() => cleanupTempDirs());

describe('drill SVG in headless Chromium', () => {
  it('renders a non-blank timeline', async () => {
    const timeline = Array.from({ length: 60 }, (_, i) => ({ t: i * 250, reads: 80 + (i % 7) * 10, writes: i > 20 && i < 26 ? 0 : 60, errors: i === 21 ? 5 : 0 }));
    const report: DrillReport = {
      started: new Date().toISOString(),
      host: 'test',
      passed: true,
      scenarios: [
        {
          name: 'target-failover',
          passed: true,
          acknowledged_writes: 900,
          lost_writes: 0,
          stale_reads: 0,
          ghost_writes: 0,
          corrupt_reads: 0,
          failover_seconds: 1.5,
          faults_injected: 1,
          io_before: 140,
          io_during: 80,
          io_after: 150,
          duration_seconds: 15,
          notes: [],
          markers: [{ t: 5250, label: 'SIGKILL A', kind: 'fault' }, { t: 6500, label: 'A back', kind: 'recover' }],
          timeline,
        },
      ],
    };
    const dir = tempDir();
    const svgPath = path.join(dir, 'timeline.svg');
    fs.writeFileSync(svgPath, renderSvg(report));
    const png = decodePng(await screenshot(svgPath, 1000, 340));
    expect(png.width).toBe(1000);
    const { inkFraction, colours } = inkStats(png);
    expect(inkFraction).toBeGreaterThan(0.01);
    expect(colours).toBeGreaterThan(8);
  });
});
