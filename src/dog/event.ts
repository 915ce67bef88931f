// `dog event watch`: print the events of one sheep's event feed (docs/cluster.md "Event feed") as JSON lines on
// stdout, one event per line, in the order the sheep applied them. The connection follows the sheep through
// restarts (reconnect with backoff; events while disconnected are not replayed). `--vdi NAME` keeps only that
// VDI's lock/invalidate/vdi events (node, epoch and recovery events still pass), `--type` picks event types,
// `--count N` exits after N events. Connection changes are reported on stderr, never on stdout.
import { FeedClient, type FeedQuery } from '../client/feed.js';
import { encodeFeedEvent, parseFeedTypes } from '../proto/feed.js';
import { DogError, EXIT_USAGE, type DogContext } from './context.js';

export interface WatchOptions {
  vdi?: string;
  type?: string;
  count?: string;
}

/** Build the subscription from the command's options (resolving --vdi to its working vid). */
async function watchQuery(ctx: DogContext, o: WatchOptions): Promise<FeedQuery> {
  const q: FeedQuery = {};
  if (o.type !== undefined) {
    try {
      q.types = parseFeedTypes(o.type);
    } catch (err) {
      throw new DogError((err as Error).message, EXIT_USAGE);
    }
  }
  if (o.vdi !== undefined) q.vids = [(await ctx.client.getVdiInfo(o.vdi)).vid];
  return q;
}

/** Parse --count: a positive integer, or undefined (watch until interrupted). */
function parseCount(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new DogError(`invalid count '${text}' (a positive integer)`, EXIT_USAGE);
  return n;
}

/** Watch until --count events were printed, or SIGINT/SIGTERM (or `stop` resolves). */
export async function eventWatch(ctx: DogContext, o: WatchOptions, stop?: Promise<void>): Promise<void> {
  const count = parseCount(o.count);
  const query = await watchQuery(ctx, o);
  const feed = new FeedClient({ gateway: { kind: 'tcp', host: ctx.address, port: ctx.port }, query, maxBackoffMs: 2_000 });
  let printed = 0;
  await new Promise<void>((resolve) => {
    const finish = (): void => {
      feed.close();
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      resolve();
    };
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    void stop?.then(finish);
    let unreachable = false;
    feed.on('connected', (c) => {
      unreachable = false;
      ctx.err.write(`watching ${c.gateway} (node ${c.node})\n`);
    });
    feed.on('retry', (r) => {
      if (!unreachable) ctx.err.write(`cannot reach ${r.gateway} (${r.error}), retrying\n`);
      unreachable = true;
    });
    feed.on('disconnected', (d) => ctx.err.write(`disconnected from ${d.gateway} (${d.code}${d.reason ? ` ${d.reason}` : ''}), reconnecting\n`));
    feed.on('event', (e) => {
      if (e.type === 'hello' || (count !== undefined && printed >= count)) return;
      ctx.out.write(`${encodeFeedEvent(e)}\n`);
      printed++;
      if (count !== undefined && printed >= count) finish();
    });
    feed.start();
  });
}
