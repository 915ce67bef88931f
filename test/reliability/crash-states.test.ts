// Flush durability beyond SIGKILL (issue 8, test 3): the real PlainStore runs over CrashFs, which forgets
// unsynced writes on a simulated power cut. A stamped workload writes through it; then every crash state at
// every fsync point (nothing unsynced survives / everything survives / a seeded random subset of pages) is
// reopened and read back: acknowledged (= flushed) writes lost must be 0 and blocks that are neither old nor
// new must be 0. The same replay over a gateway with an injected "ack early" fault must report lost writes:
// that is the proof the check can fail.
import { describe, expect, it } from 'vitest';
import { ackEarly } from '../../src/drill/faults.js';
import { ObjectIoTarget, type ObjectBackend } from '../../src/drill/objdev.js';
import { replayCrashStates, type CrashReplayReport } from '../../src/drill/crashreplay.js';
import { Workload } from '../../src/drill/workload.js';
import { componentLogger } from '../../src/obs/log.js';
import { vidToDataOid } from '../../src/proto/sheepdog/oid.js';
import { Gateway, SinglePlacement, type GatewayDeps } from '../../src/sheep/gateway.js';
import { Mutex } from '../../src/sheep/mutex.js';
import { CrashFs } from '../../src/sheep/store/crashfs.js';
import { PlainStore } from '../../src/sheep/store/plain.js';
import { ClientStore } from '../../src/sheep/client-store.js';

/** Client-path versions of a one-node store in epoch 1. */
const clientStore = (s: PlainStore): ClientStore => new ClientStore(s, () => 1, () => Promise.resolve());
import { longMode, reliabilitySeconds, reportReliability } from '../helpers/reliability.js';

const OBJ = 64 * 1024;
const OBJECTS = 4;
const BS = 4096;
const BLOCKS = (OBJ * OBJECTS) / BS;
const FIRST = vidToDataOid(0x7c2b25, 0);
const log = componentLogger('crash-states').child({}, { level: 'silent' });

function openStore(fs: CrashFs): PlainStore {
  return new PlainStore('/s', { fs, log });
}

/** A one-node gateway over `store`, optionally with the ack-early fault. */
function gatewayBackend(store: PlainStore, faulty: boolean): ObjectBackend {
  const single = new SinglePlacement(clientStore(store));
  const deps = {
    placement: faulty ? ackEarly(single) : single,
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

async function replay(fs: CrashFs, wl: Workload, seed: number, policies?: ('synced' | 'all' | 'random')[]): Promise<CrashReplayReport> {
  return replayCrashStates({
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

describe('flush durability across power cuts (crash-state replay)', () => {
  it('loses no flushed write and never shows a block that is neither old nor new', async () => {
    const seconds = reliabilitySeconds(0);
    const end = Date.now() + seconds * 1000;
    const seed0 = Number(process.env.SHEEPFOLD_FUZZ_SEED ?? Date.now() % 1_000_000);
    const total = { rounds: 0, writes: 0, acked: 0, points: 0, states: 0, lost: 0, corrupt: 0, unreadable: 0, nonlin: 0 };
    const reports: CrashReplayReport[] = [];
    for (let round = 0; round === 0 || (longMode() && Date.now() < end); round++) {
      const fs = new CrashFs();
      const store = openStore(fs);
      await store.open();
      const wl = await runWorkload(fs, clientStore(store), 200, seed0 + round);
      await store.close();
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
    reportReliability(
      'crash-states',
      {
        rounds: total.rounds,
        writes: total.writes,
        acked_writes: total.acked,
        sync_points: total.points,
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
      return replay(fs, wl, seed, ['synced']);
    };
    const healthy = await check(false);
    const broken = await check(true);
    reportReliability('ack-early', { healthy_lost: healthy.lost, broken_lost: broken.lost, broken_states: broken.states, caught: broken.lost > 0 }, { healthy, broken });
    expect(healthy.lost).toBe(0);
    expect(healthy.corrupt).toBe(0);
    expect(broken.lost).toBeGreaterThan(0);
  });
});
