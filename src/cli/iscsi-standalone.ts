// Standalone iSCSI runner for tests and benchmarks: `node dist/cli/iscsi-standalone.js HOST:PORT NAME=mem:SIZE|file:PATH ...
// [--key=value ...]` where keys are those of the `[iscsi]` config section. Prints "iscsi ready HOST:PORT".
import { initLogger } from '../obs/log.js';
import { parseExportArg, openExport } from '../target/exports.js';
import type { ExportEntry } from '../block/export-table.js';
import { iscsiOptionsFrom, type IscsiValues } from '../iscsi/frontend.js';
import { IscsiServer } from '../iscsi/server.js';

async function main(argv: string[]): Promise<void> {
  initLogger({ name: 'iscsi', level: (process.env.SHEEPFOLD_LOG_LEVEL as 'info' | undefined) ?? 'warn' });
  const values: IscsiValues = { enabled: true };
  const exports = new Map<string, ExportEntry>();
  for (const a of argv) {
    const m = /^--([a-z-]+)=(.*)$/.exec(a);
    if (m) {
      const v = m[2] ?? '';
      values[m[1] ?? ''] = /^\d+$/.test(v) && m[1]?.endsWith('-ms') ? Number(v) : v;
    } else if (a.includes('=')) {
      const e = await openExport(parseExportArg(a), {});
      exports.set(e.name, e);
    } else values.listen = a;
  }
  const srv = new IscsiServer(iscsiOptionsFrom(values, exports));
  const addr = await srv.start();
  process.stdout.write(`iscsi ready ${addr}\n`);
  const stop = (): void => {
    void srv.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`iscsi standalone: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
