// Gateway addresses: `HOST:PORT`, `[IPV6]:PORT`, `HOST` (port 7000), `unix:/path/sock` or an absolute path to a
// unix socket. A list is comma-separated (`--sheep a:7000,b:7001`), tried in order on failover.
import { SD_LISTEN_PORT } from '../proto/sheepdog/index.js';

export type GatewayAddr =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string };

/** Parse one gateway address; throws a RangeError naming the text. */
export function parseGateway(text: string): GatewayAddr {
  const t = text.trim();
  if (t.startsWith('unix:')) {
    const p = t.slice(5);
    if (p === '') throw new RangeError(`invalid gateway '${text}': empty socket path`);
    return { kind: 'unix', path: p };
  }
  if (t.startsWith('/')) return { kind: 'unix', path: t };
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(t);
  if (v6) return tcp(v6[1] ?? '', v6[2], text);
  const m = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(t);
  if (m) return tcp(m[1] ?? '', m[2], text);
  throw new RangeError(`invalid gateway '${text}' (expected HOST:PORT or unix:PATH)`);
}

function tcp(host: string, portText: string | undefined, text: string): GatewayAddr {
  const port = portText === undefined ? SD_LISTEN_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`invalid port in gateway '${text}'`);
  return { kind: 'tcp', host, port };
}

/** Parse a comma-separated gateway list (at least one). */
export function parseGatewayList(text: string): GatewayAddr[] {
  const parts = text.split(',').filter((s) => s.trim() !== '');
  if (parts.length === 0) throw new RangeError('empty gateway list');
  return parts.map(parseGateway);
}

/** `host:port` or the socket path, for messages and events. */
export function gatewayText(g: GatewayAddr): string {
  if (g.kind === 'unix') return g.path;
  return g.host.includes(':') ? `[${g.host}]:${g.port}` : `${g.host}:${g.port}`;
}
