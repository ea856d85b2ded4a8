// A priority queue of simulated events ordered by (time, insertion order): the
// same seed always yields the same order, ties included.

export interface Scheduled<T> {
  atMs: number;
  seq: number;
  event: T;
}

export class Scheduler<T> {
  private heap: Scheduled<T>[] = [];
  private seq = 0;
  nowMs = 0;

  schedule(atMs: number, event: T): void {
    if (!(atMs >= this.nowMs)) throw new Error(`sim: scheduling in the past (${atMs} < ${this.nowMs})`);
    this.push({ atMs, seq: this.seq++, event });
  }

  /** Removes and returns the next event, advancing `nowMs` to its time. */
  next(): Scheduled<T> | undefined {
    const top = this.heap[0];
    if (top === undefined) return undefined;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    this.nowMs = top.atMs;
    return top;
  }

  peekTime(): number | undefined {
    return this.heap[0]?.atMs;
  }

  get size(): number {
    return this.heap.length;
  }

  private less(a: Scheduled<T>, b: Scheduled<T>): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private push(item: Scheduled<T>): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private siftDown(start: number): void {
    const h = this.heap;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
