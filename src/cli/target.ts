// `sheepfold target`: the NBD/iSCSI target process. Options come from `--config FILE` (TOML subset, see
// src/target/config.ts and targets/single-host.toml) with command-line flags on top. Prints one ready line to
// stdout; SIGTERM/SIGINT stop gracefully (stop accepting, drain, flush, close); a second signal exits at once.
import type { Command } from 'commander';
import { initLogger } from '../obs/log.js';
import {
  checkAddress,
  defaultTargetConfig,
  loadTargetConfig,
  type TargetConfig,
} from '../target/config.js';
import { checkTargetId } from '../proto/sheepdog/target-id.js';
import { parseExportArg } from '../target/exports.js';
import { Target } from '../target/target.js';
import { createMetrics, serveMetrics } from '../obs/metrics.js';
import { parseHostPort } from '../util/address.js';
import type { LevelWithSilent } from 'pino';

interface TargetFlags {
  config?: string;
  nbd?: string;
  iscsi?: string | boolean;
  nbdTls?: string;
  tlsCert?: string;
  tlsKey?: string;
  export: string[];
  sheep?: string;
  targetId?: string;
  check?: boolean;
  json?: boolean;
  logLevel?: string;
  metrics?: string;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Merge the config file (if any) and the flags into one validated config. */
export function buildTargetConfig(flags: TargetFlags): TargetConfig {
  const cfg = flags.config !== undefined ? loadTargetConfig(flags.config) : defaultTargetConfig();
  if (flags.nbd !== undefined) cfg.nbd.listen = checkAddress(flags.nbd);
  if (flags.nbdTls !== undefined) {
    if (flags.nbdTls !== 'off' && flags.nbdTls !== 'on' && flags.nbdTls !== 'require') {
      throw new Error(`--tls must be off, on or require (got '${flags.nbdTls}')`);
    }
    cfg.nbd.tls.mode = flags.nbdTls;
  }
  if (flags.tlsCert !== undefined) cfg.nbd.tls.certFile = flags.tlsCert;
  if (flags.tlsKey !== undefined) cfg.nbd.tls.keyFile = flags.tlsKey;
  if (cfg.nbd.tls.mode !== 'off' && (cfg.nbd.tls.certFile === undefined || cfg.nbd.tls.keyFile === undefined)) {
    throw new Error(`TLS mode '${cfg.nbd.tls.mode}' needs --tls-cert and --tls-key`);
  }
  if (flags.iscsi !== undefined && flags.iscsi !== false) {
    const prev = cfg.iscsi?.values ?? {};
    const listen = typeof flags.iscsi === 'string' ? checkAddress(flags.iscsi) : (prev.listen ?? '127.0.0.1:3260');
    cfg.iscsi = { values: { ...prev, enabled: true, listen } };
  }
  if (flags.sheep !== undefined) cfg.sheep = flags.sheep.split(',').map((a) => checkAddress(a.trim())).join(',');
  if (flags.targetId !== undefined) cfg.targetId = checkTargetId(flags.targetId);
  for (const arg of flags.export) {
    const spec = parseExportArg(arg);
    if (cfg.exports.some((e) => e.name === spec.name)) throw new Error(`export '${spec.name}' given twice`);
    cfg.exports.push(spec);
  }
  if (flags.logLevel !== undefined) cfg.logLevel = flags.logLevel;
  if (cfg.logLevel !== undefined && !LEVELS.includes(cfg.logLevel)) {
    throw new Error(`invalid log level '${cfg.logLevel}' (expected one of ${LEVELS.join(', ')})`);
  }
  if (cfg.exports.length === 0) throw new Error('no exports (give --export NAME=mem:SIZE or a config with [[export]])');
  return cfg;
}

async function runTarget(flags: TargetFlags): Promise<void> {
  let cfg: TargetConfig;
  try {
    cfg = buildTargetConfig(flags);
  } catch (err) {
    process.stderr.write(`sheepfold target: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  if (flags.check === true) {
    const names = cfg.exports.map((e) => e.name);
    if (flags.json === true) process.stdout.write(`${JSON.stringify({ ok: true, exports: names })}\n`);
    else process.stdout.write(`config ok: ${names.length} export(s): ${names.join(', ')}\n`);
    return;
  }
  initLogger({ name: 'target', level: (cfg.logLevel ?? 'info') as LevelWithSilent });
  const metrics = flags.metrics !== undefined ? createMetrics('target') : undefined;
  const target = await Target.open(cfg, undefined, metrics);
  const bound = await target.start();
  if (metrics && flags.metrics !== undefined) {
    const m = parseHostPort(flags.metrics, '--metrics');
    bound.set('metrics', (await serveMetrics(metrics.registry, m.host, m.port)).address);
  }

  let stopping = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`sheepfold target: ${sig} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    void target.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`sheepfold target: stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const exportNames = [...target.exports.keys()];
  if (flags.json === true) {
    process.stdout.write(`${JSON.stringify({ ready: true, ...Object.fromEntries(bound), exports: exportNames })}\n`);
  } else {
    const fronts = [...bound].map(([n, a]) => `${n} ${a}`).join(', ');
    process.stdout.write(`target ready: ${fronts} exports ${exportNames.join(',')}\n`);
  }
}

export function registerTargetCommand(program: Command): void {
  program
    .command('target')
    .description('run the NBD/iSCSI target')
    .option('--config <file>', 'config file (TOML subset: [nbd], [iscsi], [[export]])')
    .option('--nbd <host:port>', 'NBD listen address (default 127.0.0.1:10809)')
    .option('--iscsi [host:port]', 'enable iSCSI, listening on host:port (default 127.0.0.1:3260)')
    .option(
      '--export <spec>',
      'export NAME=mem:SIZE | NAME=file:PATH | NAME=VDI[:TAG], optional ",ro" suffix (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--sheep <host:port[,host:port...]>', 'sheep gateways for VDI exports (failover in order)')
    .option('--target-id <id>', 'lock identity in the cluster (default: host name + digest of listen addresses, gateways, exports)')
    .option('--tls <mode>', 'NBD TLS: off | on | require', undefined)
    .option('--tls-cert <file>', 'PEM certificate for NBD TLS')
    .option('--tls-key <file>', 'PEM private key for NBD TLS')
    .option('--check', 'validate the configuration and exit')
    .option('--json', 'print the ready line as JSON')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
    .action(async (opts: Omit<TargetFlags, 'nbdTls'> & { tls?: string }) => {
      const { tls, ...rest } = opts;
      await runTarget({ ...rest, ...(tls !== undefined ? { nbdTls: tls } : {}) });
    });
}
