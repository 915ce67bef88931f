// Path discovery for multipath: ask one portal for SendTargets and turn every advertised address of a target
// into a PathSpec, so a drill can say "this target, through whatever portals it advertises".
import { discoverTargets, type IscsiSessionOptions } from './session.js';
import type { PathSpec } from './multipath.js';
import type { ChapCredentials } from './login.js';

export interface DiscoverPathsOptions {
  /** The portal asked for SendTargets. */
  host: string;
  port?: number;
  targetName: string;
  initiatorName?: string;
  /** CHAP for the discovery session (if the target requires it). */
  discoveryChap?: ChapCredentials;
  /** Options given to every path's session (CHAP for the normal sessions, LUN, digests...). */
  session?: Partial<IscsiSessionOptions>;
}

/** One PathSpec per address the target advertises (in advertised order; priority = position). */
export async function discoverPaths(opts: DiscoverPathsOptions): Promise<PathSpec[]> {
  const found = await discoverTargets({
    host: opts.host,
    port: opts.port,
    initiatorName: opts.initiatorName,
    chap: opts.discoveryChap,
  });
  const t = found.find((f) => f.name === opts.targetName);
  if (!t || t.addresses.length === 0) {
    throw new Error(`SendTargets at ${opts.host}:${opts.port ?? 3260} does not list ${opts.targetName} (got ${found.map((f) => f.name).join(', ') || 'nothing'})`);
  }
  return t.addresses.map((a, i) => ({
    name: `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`,
    priority: i,
    session: { initiatorName: opts.initiatorName, ...opts.session, host: a.host, port: a.port, targetName: opts.targetName },
  }));
}
