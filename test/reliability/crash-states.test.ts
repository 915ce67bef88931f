// Flush durability beyond SIGKILL: the real stores (plain, and journal with a log small enough to wrap, wait
// for room and checkpoint many times) run over CrashFs, which forgets unsynced writes on a simulated power cut. A stamped workload writes through it; then every crash state at
// every fsync point (nothing unsynced survives / everything survives / a seeded random subset of pages) is
// reopened and read back: acknowledged (= flushed) writes lost must be 0 and blocks that are neither old nor
// new must be 0. The same replay over a gateway with an injected "ack early" fault must report lost writes:
// that is the proof the check can fail.
import { beforeAll, describe, expect, it } from 'vitest';
import { ackEarly } from '../../src/drill/faults.js';
import { ObjectIoTarget, type ObjectBackend } from '../../src/drill/objdev.js';
import { replayCrashStates, type CrashReplayReport } from '../../src/drill/crashreplay.js';
import { Workload } from '../../src/drill/workload.js';
import { componentLogger } from '../../src/obs/log.js';
import { vidToDataOid } from '../../src/proto/sheepdog/oid.js';
import { Gateway, SinglePlacement, type GatewayDeps } from '../../src/sheep/gateway.js';
import { Mutex } from '../../src/sheep/mutex.js';
import { CrashFs } from '../../src/sheep/store/crashfs.js';
import { JournalStore } from '../../src/sheep/store/journal.js';
import { PlainStore } from '../../src/sheep/store/plain.js';
import type { ObjectStore } from '../../src/sheep/store/store.js';
import { ClientStore } from '../../src/sheep/client-store.js';

/** Client-path versions of a one-node store in epoch 1. */
const clientStore = (s: ObjectStore): ClientStore => new ClientStore(s, () => 1, () => Promise.resolve());
import { longMode, reliabilitySeconds, reportReliability } from '../helpers/reliability.js';

const OBJ = 64 * 1024;
const OBJECTS = 4;
const BS = 4096;
const BLOCKS = (OBJ * OBJECTS) / BS;
const FIRST = vidToDataOid(0x7c2b25, 0);
const log = componentLogger('crash-states').child({}, { level: 'silent' });

type Kind = 'plain' | 'journal' | 'journal-direct';
let kind: Kind = 'plain';

function openStore(fs: CrashFs): ObjectStore {
  // 160 KiB of log: a few dozen 4 KiB records, so the workload wraps it and waits for checkpoints.
  // journal-direct: every write to an object with nothing in the live log goes straight to its file.
  if (kind === 'plain') return new PlainStore('/s', { fs, log });
  return new JournalStore('/s', { fs, log, journalBytes: 160 * 1024, checkpointIntervalMs: 2, directWriteBytes: kind === 'journal' ? 0 : 4096 });
}

/** A one-node gateway over `store`, optionally with the ack-early fault. */
function gatewayBackend(store: ObjectStore, faulty: boolean): ObjectBackend {
  const single = new SinglePlacement(clientStore(store));
  const deps = {
    // The journal queues a record synchronously inside write(): the fault needs a delay to open a window.
    placement: faulty ? ackEarly(single, undefined, kind === 'plain' ? 0 : 5) : single,
    vdis: { get: () => undefined, familyFrom: () => [] },
    locks: { refreshRequired: () => false, participantState: () => null },
    self: { addr: '127.0.0.1', port: 7000 },
    epoch: () => 1,
    defaults: () => ({ copies: 1, blockSizeShift: 16 }),
    coherence: () => Promise.resolve(0),
    namespaceMutex: new Mutex(),
    log,
  } as unknown as GatewayDeps;
  const gw = new Gateway(deps);
  const io = (oid: bigint, offset: number) => ({ oid, cowOid: 0n, copies: 1, offset, flags: 0 });
  return {
    create: (oid, _size, data, offset) => gw.create(io(oid, offset), data),
    write: (oid, data, offset) => gw.write(io(oid, offset), data),
    read: (oid, offset, length) => gw.read(io(oid, offset), length),
  };
}

/** Run a stamped workload of `writes` writes through `backend` on `fs`, timed with the CrashFs clock. */
async function runWorkload(fs: CrashFs, backend: ObjectBackend, writes: number, seed: number): Promise<Workload> {
  const wl = new Workload(new ObjectIoTarget(backend, OBJ, FIRST), { blocks: BLOCKS, blockSize: BS, workers: 4, writeRatio: 0.85, seed, now: () => fs.clock });
  wl.start();
  while (wl.stats.writes < writes) await new Promise((r) => setTimeout(r, 2));
  await wl.stop();
  return wl;
}

async function replay(fs: CrashFs, wl: Workload, seed: number, policies?: ('synced' | 'all' | 'random')[], points?: number[]): Promise<CrashReplayReport> {
  return replayCrashStates({
    ...(points ? { points } : {}),
    fs,
    history: wl.history,
    blocks: BLOCKS,
    blockSize: BS,
    seed,
    ...(policies ? { policies } : {}),
    open: async (crashed) => {
      const s = openStore(crashed);
      await s.open();
      return { target: new ObjectIoTarget(clientStore(s), OBJ, FIRST), close: () => s.close() };
    },
  });
}

describe.each(['plain', 'journal', 'journal-direct'] as const)('flush durability across power cuts (crash-state replay), %s store', (k) => {
  beforeAll(() => {
    kind = k;
  });

  it('loses no flushed write and never shows a block that is neither old nor new', async () => {
    const seconds = reliabilitySeconds(0);
    const end = Date.now() + seconds * 1000;
    const seed0 = Number(process.env.SHEEPFOLD_FUZZ_SEED ?? Date.now() % 1_000_000);
    const total = { rounds: 0, writes: 0, acked: 0, points: 0, states: 0, lost: 0, corrupt: 0, unreadable: 0, nonlin: 0 };
    const reports: CrashReplayReport[] = [];
    const store0Stats = { waits: 0, checkpoints: 0, direct: 0 };
    for (let round = 0; round === 0 || (longMode() && Date.now() < end); round++) {
      const fs = new CrashFs();
      const store = openStore(fs);
      await store.open();
      const wl = await runWorkload(fs, clientStore(store), 200, seed0 + round);
      await store.close();
      if (store instanceof JournalStore) {
        store0Stats.waits += store.stats.waits;
        store0Stats.checkpoints += store.stats.checkpoints;
        store0Stats.direct += store.stats.direct;
      }
      const rep = await replay(fs, wl, seed0 + round);
      reports.push(rep);
      total.rounds++;
      total.writes += wl.stats.writes;
      total.acked += wl.stats.acknowledgedWrites;
      total.points += rep.points;
      total.states += rep.states;
      total.lost += rep.lost;
      total.corrupt += rep.corrupt;
      total.unreadable += rep.unreadable;
      total.nonlin += rep.nonlinearizable;
    }
    if (k !== 'plain') expect(store0Stats.waits + store0Stats.checkpoints).toBeGreaterThan(0);
    if (k === 'journal-direct') expect(store0Stats.direct).toBeGreaterThan(0);
    reportReliability(
      k === 'plain' ? 'crash-states' : `crash-states-${k}`,
      {
        rounds: total.rounds,
        writes: total.writes,
        acked_writes: total.acked,
        sync_points: total.points,
        ...(k === 'plain' ? {} : { log_waits: store0Stats.waits, checkpoints: store0Stats.checkpoints, direct_writes: store0Stats.direct }),
        crash_states: total.states,
        flushed_lost: total.lost,
        neither_old_nor_new: total.corrupt,
        unreadable: total.unreadable,
        nonlinearizable: total.nonlin,
        seed: seed0,
      },
      reports,
    );
    const first = reports.find((r) => r.firstViolation)?.firstViolation;
    expect(first, `seed ${seed0}: ${JSON.stringify(first)}`).toBeUndefined();
    expect(total.lost).toBe(0);
    expect(total.corrupt).toBe(0);
    expect(total.unreadable).toBe(0);
    expect(total.states).toBeGreaterThan(300);
  });

  it('catches a gateway that acknowledges writes before its replicas have them ("ack early")', async () => {
    const seed = 4242;
    const check = async (faulty: boolean): Promise<CrashReplayReport> => {
      const fs = new CrashFs();
      const store = openStore(fs);
      await store.open();
      const wl = await runWorkload(fs, gatewayBackend(store, faulty), 120, seed);
      // Let the background replica writes of the faulty gateway finish before the log is replayed.
      await store.close();
      // The journal has one sync per batch and nothing between a batch's write and its sync: crash right
      // before each sync too, where an early acknowledgement is exposed.
      const points = k !== 'plain' ? [...new Set(fs.syncPoints().flatMap((p) => [p - 1, p]))].filter((p) => p >= 0) : undefined;
      return replay(fs, wl, seed, ['synced'], points);
    };
    const healthy = await check(false);
    const broken = await check(true);
    reportReliability(k === 'plain' ? 'ack-early' : `ack-early-${k}`, { healthy_lost: healthy.lost, broken_lost: broken.lost, broken_states: broken.states, caught: broken.lost > 0 }, { healthy, broken });
    expect(healthy.lost).toBe(0);
    expect(healthy.corrupt).toBe(0);
    expect(broken.lost).toBeGreaterThan(0);
  });
});
