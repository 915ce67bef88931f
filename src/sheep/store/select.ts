// Which object store a sheep opens on a store directory: a store keeps the kind it was made with (a journal
// store has `journal.id`, a plain one has objects and no journal), a new or empty one gets the requested kind,
// plain by default (journal when asked for, or when journal options are given). Options that only one kind
// understands are refused for the other, never ignored.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parseOidHex } from '../../proto/sheepdog/oid.js';
import type { Logger } from '../../obs/log.js';
import { JournalStore } from './journal.js';
import { PlainStore } from './plain.js';
import type { ObjectStore } from './store.js';

export const STORE_KINDS = ['journal', 'plain'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export interface StoreChoice {
  dir: string;
  /** Asked for on the command line (absent: keep what the directory holds; plain for a new store). */
  kind?: StoreKind;
  journalPath?: string;
  journalBytes?: number;
  capacityBytes?: number;
  scrubIntervalMs?: number;
  log: Logger;
}

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(
    () => true,
    () => false,
  );
}

/** The kind a store directory already holds, or null when it holds no objects yet. */
export async function detectStoreKind(dir: string): Promise<StoreKind | null> {
  if (await exists(path.join(dir, 'journal.id'))) return 'journal';
  const names = await fsp.readdir(path.join(dir, 'obj')).catch(() => [] as string[]);
  return names.some((n) => parseOidHex(n) !== null) ? 'plain' : null;
}

export async function openStoreKind(c: StoreChoice): Promise<{ kind: StoreKind; store: ObjectStore }> {
  const found = await detectStoreKind(c.dir);
  if (found && c.kind && found !== c.kind) throw new Error(`store ${c.dir} holds a ${found} store; it cannot be opened as --store-backend ${c.kind}`);
  const kind = found ?? c.kind ?? (c.journalPath !== undefined || c.journalBytes !== undefined ? 'journal' : 'plain');
  if (kind === 'plain' && (c.journalPath !== undefined || c.journalBytes !== undefined)) {
    throw new Error(`--journal and --journal-size need the journal store backend; ${c.dir} is a plain store`);
  }
  const common = {
    log: c.log,
    ...(c.capacityBytes ? { capacityBytes: c.capacityBytes } : {}),
    ...(c.scrubIntervalMs ? { scrubIntervalMs: c.scrubIntervalMs } : {}),
  };
  if (kind === 'plain') return { kind, store: new PlainStore(c.dir, common) };
  return {
    kind,
    store: new JournalStore(c.dir, {
      ...common,
      ...(c.journalPath ? { journalPath: path.resolve(c.journalPath) } : {}),
      ...(c.journalBytes ? { journalBytes: c.journalBytes } : {}),
    }),
  };
}
