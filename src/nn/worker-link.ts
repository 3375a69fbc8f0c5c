/**
 * Request and reply with a worker thread: each request gets an id, which the worker echoes in its
 * reply. A reply the worker marks as an error rejects the request; so does the worker's crash or
 * exit, for every request still waiting, and for every later one.
 * Used by data-parallel training (./backends/wasm/parallel.ts) and EM's noise pool (../noise/pool.ts).
 */
import type { Worker } from 'node:worker_threads';

export class WorkerLink<Req extends object, Reply extends { id: number }> {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (r: Reply) => void; reject: (e: Error) => void }
  >();
  private failure: Error | undefined;

  /**
   * @param what names the worker in the error of its exit
   * @param errorOf the error message a reply carries, or null for a good reply
   */
  constructor(
    readonly worker: Worker,
    what: string,
    errorOf: (reply: Reply) => string | null,
  ) {
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (waiter === undefined) return;
      this.pending.delete(reply.id);
      const error = errorOf(reply);
      if (error !== null) waiter.reject(new Error(error));
      else waiter.resolve(reply);
    });
    const broken = (e: Error): void => {
      this.failure = e;
      for (const w of this.pending.values()) w.reject(e);
      this.pending.clear();
    };
    worker.on('error', broken);
    worker.on('exit', (code) => broken(new Error(`${what} exited (code ${code})`)));
  }

  request(message: Req, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }
}
