// Target: opens every configured export once into an ExportTable, builds the front ends from the config,
// starts them, and on stop() shuts down in order: front ends stop accepting and drain in-flight requests,
// then every device is flushed and closed. Front ends come from FRONTEND_FACTORIES; to add one (iSCSI), append
// a factory that returns a Frontend when its section is enabled.
import { componentLogger, type Logger } from '../obs/log.js';
import { NbdServer } from '../nbd/server.js';
import { iscsiFrontend } from '../iscsi/frontend.js';
import { splitAddress, targetIdOf, type TargetConfig } from './config.js';
import { openExport } from './exports.js';
import { MeteredDevice } from '../block/metered.js';
import type { ProcessMetrics } from '../obs/metrics.js';
import type { ExportEntry, ExportTable, Frontend } from '../block/export-table.js';

/** Builds one front end for a config, or undefined when that front end is disabled. */
export type FrontendFactory = (cfg: TargetConfig, exports: ExportTable, log: Logger) => Frontend | undefined;

/** The NBD front end, from `[nbd]` / `--nbd`. */
export const nbdFrontendFactory: FrontendFactory = (cfg, exports) => {
  if (!cfg.nbd.enabled) return undefined;
  const { host, port } = splitAddress(cfg.nbd.listen);
  return new NbdServer({
    exports,
    host,
    port,
    tls: cfg.nbd.tls,
    limits: cfg.nbd.maxInFlight !== undefined ? { maxInFlight: cfg.nbd.maxInFlight } : {},
    ...(cfg.nbd.maxConnections !== undefined ? { maxConnections: cfg.nbd.maxConnections } : {}),
    logger: componentLogger('nbd'),
  });
};

/** The iSCSI front end, from `[iscsi]` / `--iscsi` (off unless enabled). */
export const iscsiFrontendFactory: FrontendFactory = (cfg, exports, log) => iscsiFrontend(cfg.iscsi?.values, exports, log);

/** Every front end the target knows, in start order. */
export const FRONTEND_FACTORIES: FrontendFactory[] = [nbdFrontendFactory, iscsiFrontendFactory];

export class Target {
  private started: Frontend[] = [];

  private constructor(
    readonly exports: ExportTable,
    private readonly frontends: Frontend[],
    private readonly log: Logger,
  ) {}

  /** Open the exports and build the front ends (nothing listens yet). */
  static async open(
    cfg: TargetConfig,
    factories: FrontendFactory[] = FRONTEND_FACTORIES,
    metrics?: ProcessMetrics,
  ): Promise<Target> {
    const log = componentLogger('target');
    const table = new Map<string, ExportEntry>();
    try {
      for (const spec of cfg.exports) {
        if (table.has(spec.name)) throw new Error(`export '${spec.name}' given twice`);
        const opened = await openExport(spec, cfg.sheep !== undefined ? { sheep: cfg.sheep, targetId: targetIdOf(cfg) } : {});
        const e = metrics ? { ...opened, device: new MeteredDevice(opened.device, metrics) } : opened;
        table.set(spec.name, e);
        log.info({ export: e.name, size: e.device.size, readOnly: e.readOnly, description: e.description }, 'target.export_open');
      }
      const frontends = factories.map((f) => f(cfg, table, log)).filter((f): f is Frontend => f !== undefined);
      if (frontends.length === 0) throw new Error('no front end enabled (NBD and iSCSI are both off)');
      return new Target(table, frontends, log);
    } catch (err) {
      await Promise.allSettled([...table.values()].map((e) => e.device.close()));
      throw err;
    }
  }

  /** Start every front end; resolves with front end name → bound HOST:PORT. */
  async start(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const f of this.frontends) {
      try {
        out.set(f.name, await f.start());
        this.started.push(f);
      } catch (err) {
        await this.stop();
        throw err;
      }
    }
    return out;
  }

  /** Graceful stop: front ends drain and close, then every device is flushed and closed. */
  async stop(): Promise<void> {
    const fronts = this.started.splice(0);
    await Promise.allSettled(fronts.map((f) => f.stop()));
    await Promise.allSettled(
      [...this.exports.values()].map(async (e) => {
        try {
          if (!e.readOnly) await e.device.flush();
        } catch (err) {
          this.log.error({ export: e.name, err: err instanceof Error ? err.message : String(err) }, 'target.flush_failed');
        }
        await e.device.close();
      }),
    );
    this.log.info('target.stopped');
  }
}
