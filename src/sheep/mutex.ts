// A FIFO async mutex: serializes the sheep's block-style work (VDI namespace changes, reclaim) the way
// sheepdog's cluster "block" serializes it (fact sheet §2.1, pitfall 20).

export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Run `fn` once every earlier holder has finished. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
