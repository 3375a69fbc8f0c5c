/**
 * A leaner backward pass for the native backend. tfjs' `engine.gradients` keeps every gradient it
 * computes, and every tensor the forward pass saved, until the whole backward pass ends, so a
 * training step peaks at all saved activations plus all activation gradients. Here, as PyTorch's
 * autograd does, a node's output gradients and its saved tensors are released as soon as the node
 * has been differentiated (a saved tensor is a reference-counted clone: its memory goes back to
 * the pool when the last node that saved it is done). The result is the same; only lifetimes
 * change. Other backends, and nested (higher-order) gradients, use tfjs' own pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NATIVE } from './backend.js';

interface TapeNode {
  id: number;
  kernelName: string;
  outputs: tf.Tensor[];
  inputs: Record<string, tf.Tensor>;
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string | (() => T), f?: () => T): T;
  gradients<T extends tf.Tensor>(
    f: () => T,
    xs: tf.Tensor[],
    dy?: T,
    allowNoGradients?: boolean,
  ): { value: T; grads: tf.Tensor[] };
}

/** The nodes on a path from `xs` to `y`, each with only the inputs that lead from `xs`. */
function pathFromTo(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const reached: boolean[] = tape.map((node) => {
    const hit = Object.values(node.inputs).some((t) => fromX.has(t.id));
    if (hit) for (const o of node.outputs) fromX.add(o.id);
    return hit;
  });
  const toY = new Set([y.id]);
  const keep: boolean[] = new Array<boolean>(tape.length).fill(false);
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (!node.outputs.some((o) => toY.has(o.id))) continue;
    for (const t of Object.values(node.inputs)) toY.add(t.id);
    keep[i] = reached[i];
  }
  const out: TapeNode[] = [];
  tape.forEach((node, i) => {
    if (!keep[i]) return;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[name] = t;
    out.push({ ...node, inputs });
  });
  return out;
}

/** Ids of the tensors the lean pass in progress differentiates with respect to (its forward). */
let targets: Set<number> | null = null;

/**
 * Whether no gradient of any of `ts` will be wanted from what runs now: nothing is being recorded,
 * or the forward pass being recorded is the lean pass's own (not a nested one) and each of `ts` is
 * absent, or a variable it is not taken with respect to (a variable is no op's output, so nothing
 * else leads to it). Then a kernel need not save what only those gradients would use (in PGD's
 * input gradient: every weight's).
 */
export function gradientUnwanted(...ts: (tf.Tensor | null | undefined)[]): boolean {
  const depth = (tf.engine() as unknown as EngineInternals).state.gradientDepth;
  if (depth === 0) return true; // nothing is being recorded
  if (targets === null || depth !== 1) return false;
  const t = targets;
  return ts.every((x) => x == null || (x instanceof tf.Variable && !t.has(x.id)));
}

let installed = false;

/** Installs the lean pass on tfjs' engine (idempotent); it acts only while native is current. */
export function useLeanBackprop(): void {
  if (installed) return;
  installed = true;
  const engine = tf.engine() as unknown as EngineInternals;
  const original = engine.gradients.bind(engine);
  engine.gradients = function <T extends tf.Tensor>(
    f: () => T,
    xs: tf.Tensor[],
    dy?: T,
    allowNoGradients = false,
  ): { value: T; grads: tf.Tensor[] } {
    if (tf.getBackend() !== NATIVE || engine.state.gradientDepth !== 0)
      return original(f, xs, dy, allowNoGradients);
    if (dy != null && dy.dtype !== 'float32')
      throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
    const outer = targets;
    targets = new Set(xs.map((x) => x.id));
    let y: T;
    try {
      y = engine.scopedRun(
        () => engine.startTape(),
        () => engine.endTape(),
        () => engine.tidy('forward', f),
      );
    } finally {
      targets = outer;
    }
    if (!(y instanceof tf.Tensor))
      throw new Error('The result y returned by f() must be a tensor.');
    const tape = engine.state.activeTape ?? [];
    const path = pathFromTo(tape, xs, y);
    if (!allowNoGradients && path.length === 0 && xs.length > 0)
      throw new Error('Cannot compute gradient of y=f(x) with respect to x: no path from x to y.');
    return engine.tidy('backward', () => {
      const acc = new Map<number, tf.Tensor>();
      acc.set(y.id, dy ?? tf.ones(y.shape));
      const inUse = new Set<tf.Tensor>([...(dy ? [dy] : [])]);
      for (let i = path.length - 1; i >= 0; i--) {
        const node = path[i];
        const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
        if (node.gradient == null)
          throw new Error(
            `Cannot compute gradient: gradient function not found for ${node.kernelName}.`,
          );
        const thunks = node.gradient(dys);
        const produced = new Set<tf.Tensor>();
        for (const [name, x] of Object.entries(node.inputs)) {
          if (!(name in thunks))
            throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}.`);
          const dx = engine.tidy(() => thunks[name]());
          if (dx.dtype !== 'float32' || !tf.util.arraysEqual(dx.shape, x.shape))
            throw new Error(
              `Error in gradient for op ${node.kernelName}: the gradient of input '${name}' is ` +
                `${dx.dtype} [${dx.shape}], the input [${x.shape}]`,
            );
          produced.add(dx);
          const prev = acc.get(x.id);
          if (prev === undefined) acc.set(x.id, dx);
          else {
            acc.set(x.id, tf.add(prev, dx));
            if (!produced.has(prev)) prev.dispose();
            dx.dispose();
          }
        }
        // This node is done: its output gradients and saved tensors are not needed any more.
        const live = new Set(acc.values());
        for (const o of node.outputs) {
          const g = acc.get(o.id);
          acc.delete(o.id);
          if (g !== undefined && !inUse.has(g) && !live.has(g) && !produced.has(g)) g.dispose();
        }
        for (const t of node.saved ?? []) if (!produced.has(t) && !live.has(t)) t.dispose();
      }
      const grads = xs.map((x) => acc.get(x.id)) as tf.Tensor[];
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      engine.state.activeTape = null;
      return { value: y, grads };
    });
  };
}
