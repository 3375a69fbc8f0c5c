/**
 * Python pickles, protocol 2, for exactly what the CIFAR "python version" files hold: a dict with
 * string keys whose values are strings, ints, lists of ints or strings, and one numpy uint8
 * array. The official files were written by Python 2's cPickle; `PickleWriter` writes the same
 * opcodes in the same way (keys and ASCII strings as Python 2 `str`, so Python 3 loads them as
 * `str` with encoding='latin1' (torchvision) and as `bytes` with encoding='bytes' (Keras); memo
 * entries where cPickle puts them), so the official `batches.meta` comes out byte-identical.
 *
 * `unpickle` is not a general unpickler: it runs only those opcodes, knows only the three numpy
 * globals an array needs, and refuses anything else with an error naming the file and the byte.
 */
import { fail } from '../errors.js';

const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  MARK: 0x28,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  APPEND: 0x61,
  APPENDS: 0x65,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  SHORT_BINSTRING: 0x55,
  BINSTRING: 0x54,
  BINUNICODE: 0x58,
  BININT1: 0x4b,
  BININT2: 0x4d,
  BININT: 0x4a,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  TUPLE: 0x74,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  BUILD: 0x62,
} as const;

const RECONSTRUCT = 'numpy.core.multiarray\n_reconstruct';
const NDARRAY = 'numpy\nndarray';
const DTYPE = 'numpy\ndtype';
/** cPickle writes APPENDS in batches of this many items. */
const BATCH = 1000;
/** BINSTRING's length is a signed 32-bit integer. */
export const MAX_STRING_BYTES = 0x7fffffff;

/** Writes pickle opcodes into a growing buffer; `take()` hands out what is written so far. */
export class PickleWriter {
  private buf = Buffer.alloc(1 << 16);
  private used = 0;
  private memo = 0;

  private room(n: number): void {
    if (this.used + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.used + n));
    this.buf.copy(next, 0, 0, this.used);
    this.buf = next;
  }

  private op(...bytes: number[]): this {
    this.room(bytes.length);
    for (const b of bytes) this.buf[this.used++] = b;
    return this;
  }

  private u32(n: number): this {
    this.room(4);
    this.buf.writeUInt32LE(n, this.used);
    this.used += 4;
    return this;
  }

  private raw(bytes: Uint8Array): this {
    this.room(bytes.length);
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
    return this;
  }

  /** The bytes written since the last take. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.used));
    this.used = 0;
    return out;
  }

  private put(): this {
    const i = ++this.memo;
    return i < 256 ? this.op(OP.BINPUT, i) : this.op(OP.LONG_BINPUT).u32(i);
  }

  private global(name: string): this {
    return this.op(OP.GLOBAL)
      .raw(Buffer.from(name + '\n', 'latin1'))
      .put();
  }

  /** Protocol 2, then an empty dict and the mark its items follow. */
  dictStart(): this {
    return this.op(OP.PROTO, 2, OP.EMPTY_DICT).put().op(OP.MARK);
  }

  /** Sets every item since dictStart, and ends the pickle. */
  dictEnd(): this {
    return this.op(OP.SETITEMS, OP.STOP);
  }

  /** ASCII as a Python 2 `str` (what the official files hold), anything else as `unicode`. */
  str(s: string, memoize = true): this {
    const ascii = Buffer.byteLength(s, 'utf8') === s.length;
    const bytes = Buffer.from(s, ascii ? 'latin1' : 'utf8');
    if (bytes.length > MAX_STRING_BYTES) throw new RangeError('string too long for a pickle');
    if (!ascii) this.op(OP.BINUNICODE).u32(bytes.length);
    else if (bytes.length < 256) this.op(OP.SHORT_BINSTRING, bytes.length);
    else this.op(OP.BINSTRING).u32(bytes.length);
    this.raw(bytes);
    return memoize ? this.put() : this;
  }

  int(n: number): this {
    if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff)
      throw new RangeError(`${n} is not a 32-bit integer`);
    if (n >= 0 && n < 256) return this.op(OP.BININT1, n);
    if (n >= 0 && n < 65536) return this.op(OP.BININT2, n & 255, n >>> 8);
    this.room(5);
    this.buf[this.used] = OP.BININT;
    this.buf.writeInt32LE(n, this.used + 1);
    this.used += 5;
    return this;
  }

  private list<T>(items: ArrayLike<T>, item: (x: T) => void): this {
    this.op(OP.EMPTY_LIST).put();
    for (let start = 0; start < items.length; start += BATCH) {
      const end = Math.min(start + BATCH, items.length);
      if (end - start === 1) {
        item(items[start]);
        this.op(OP.APPEND);
        continue;
      }
      this.op(OP.MARK);
      for (let i = start; i < end; i++) item(items[i]);
      this.op(OP.APPENDS);
    }
    return this;
  }

  intList(items: ArrayLike<number>): this {
    return this.list(items, (n) => this.int(n));
  }

  strList(items: string[]): this {
    return this.list(items, (s) => this.str(s));
  }

  /**
   * A C-ordered numpy uint8 array of `shape`, up to its data: the caller writes the
   * product-of-shape data bytes next, then calls `arrayEnd`.
   */
  arrayStart(shape: number[]): this {
    const bytes = shape.reduce((a, b) => a * b, 1);
    if (bytes > MAX_STRING_BYTES) throw new RangeError('array too large for a protocol-2 pickle');
    this.global(RECONSTRUCT).global(NDARRAY);
    this.int(0).op(OP.TUPLE1).str('b', false).op(OP.TUPLE3, OP.REDUCE).put();
    this.op(OP.MARK).int(1);
    this.tuple(shape);
    this.global(DTYPE).str('u1', false).int(0).int(1).op(OP.TUPLE3, OP.REDUCE).put();
    this.op(OP.MARK).int(3).str('|', false).op(OP.NONE, OP.NONE, OP.NONE).int(-1).int(-1).int(0);
    this.op(OP.TUPLE, OP.BUILD, OP.NEWFALSE, OP.BINSTRING).u32(bytes);
    return this;
  }

  arrayEnd(): this {
    return this.op(OP.TUPLE, OP.BUILD);
  }

  private tuple(ints: number[]): this {
    if (ints.length > 3) this.op(OP.MARK);
    for (const n of ints) this.int(n);
    return this.op(
      ints.length > 3 ? OP.TUPLE : [OP.TUPLE1, OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][ints.length],
    );
  }
}

/** A pickled dict of `entries` (no arrays: those are streamed with arrayStart/arrayEnd). */
export function pickleDict(
  entries: Array<[string, string | number | number[] | string[]]>,
): Buffer {
  const p = new PickleWriter().dictStart();
  for (const [key, value] of entries) {
    p.str(key);
    if (typeof value === 'string') p.str(value);
    else if (typeof value === 'number') p.int(value);
    else if (value.every((v) => typeof v === 'number')) p.intList(value as number[]);
    else p.strList(value as string[]);
  }
  return p.dictEnd().take();
}

// ---------------------------------------------------------------------------------------------
// Reading

/** A Python 2 `str`: bytes (the official files' keys, names and pixel data). */
export class PyBytes {
  constructor(readonly bytes: Uint8Array) {}
  /** As torchvision reads it (encoding='latin1'). */
  text(): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length).toString(
      'latin1',
    );
  }
}

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A numpy uint8 array (C order); `data` is null until its state is set. */
export class NdArray {
  shape: number[] = [];
  data: Uint8Array | null = null;
}

class PyGlobal {
  constructor(readonly name: string) {}
}

class Dtype {
  built = false;
}

export type PyValue =
  | null
  | boolean
  | number
  | string
  | PyBytes
  | PyTuple
  | PyValue[]
  | Map<string, PyValue>
  | NdArray
  | PyGlobal
  | Dtype;

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

/**
 * Runs a protocol-2 pickle of dicts, lists, tuples, ints, strings and numpy uint8 arrays; any
 * other opcode, global or object fails with `path` and the byte offset.
 */
export function unpickle(path: string, b: Uint8Array): PyValue {
  const view = new DataView(b.buffer, b.byteOffset, b.length);
  const stack: Slot[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;
  const bad = (what: string, at = pos): never =>
    fail(
      `${path}: byte ${at}: ${what}; expected a protocol-2 pickle like the official CIFAR python ` +
        `files (a dict of strings, ints, lists and one numpy uint8 array)`,
    );
  const need = (n: number): number => {
    if (n < 0 || pos + n > b.length)
      bad(`truncated (${n} more bytes needed, file has ${b.length})`);
    const at = pos;
    pos += n;
    return at;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) return bad('stack underflow');
    return v;
  };
  const popMark = (): PyValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) bad('no mark on the stack');
    const items = stack.splice(i) as PyValue[];
    items.shift();
    return items;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return bad('empty stack');
    return v;
  };
  const keyOf = (k: PyValue): string =>
    typeof k === 'string'
      ? k
      : k instanceof PyBytes
        ? k.text()
        : bad('a dict key that is not a string');
  const setItems = (items: PyValue[]) => {
    const d = top();
    if (!(d instanceof Map)) return bad('items set on something that is not a dict');
    if (items.length % 2) bad('an odd number of dict items');
    for (let i = 0; i < items.length; i += 2) d.set(keyOf(items[i]), items[i + 1]);
  };
  const append = (items: PyValue[]) => {
    const l = top();
    if (!Array.isArray(l)) return bad('items appended to something that is not a list');
    for (const x of items) l.push(x);
  };
  const ints = (t: PyValue): number[] | null =>
    t instanceof PyTuple && t.items.every((x) => typeof x === 'number')
      ? (t.items as number[])
      : null;

  if (b.length < 2 || b[0] !== OP.PROTO || b[1] !== 2)
    bad(`not a protocol-2 pickle (starts ${Buffer.from(b.subarray(0, 2)).toString('hex')})`, 0);
  pos = 2;
  for (;;) {
    const at = need(1);
    const op = b[at];
    switch (op) {
      case OP.STOP: {
        const v = pop();
        if (stack.length !== 0) bad('values left on the stack at the end');
        if (pos !== b.length) bad(`${b.length - pos} bytes after the end of the pickle`);
        return v;
      }
      case OP.MARK:
        stack.push(MARK);
        break;
      case OP.EMPTY_DICT:
        stack.push(new Map());
        break;
      case OP.EMPTY_LIST:
        stack.push([]);
        break;
      case OP.SETITEM: {
        const v = pop();
        setItems([pop(), v]);
        break;
      }
      case OP.SETITEMS:
        setItems(popMark());
        break;
      case OP.APPEND:
        append([pop()]);
        break;
      case OP.APPENDS:
        append(popMark());
        break;
      case OP.BINPUT:
        memo.set(b[need(1)], top());
        break;
      case OP.LONG_BINPUT:
        memo.set(view.getUint32(need(4), true), top());
        break;
      case OP.BINGET:
      case OP.LONG_BINGET: {
        const i = op === OP.BINGET ? b[need(1)] : view.getUint32(need(4), true);
        const v = memo.get(i);
        if (v === undefined) bad(`memo entry ${i} read before it was written`);
        stack.push(v as PyValue);
        break;
      }
      case OP.SHORT_BINSTRING:
      case OP.BINSTRING:
      case OP.BINUNICODE: {
        const n = op === OP.SHORT_BINSTRING ? b[need(1)] : view.getInt32(need(4), true);
        const s = b.subarray(need(n), pos);
        stack.push(op === OP.BINUNICODE ? Buffer.from(s).toString('utf8') : new PyBytes(s));
        break;
      }
      case OP.BININT1:
        stack.push(b[need(1)]);
        break;
      case OP.BININT2:
        stack.push(view.getUint16(need(2), true));
        break;
      case OP.BININT:
        stack.push(view.getInt32(need(4), true));
        break;
      case OP.NONE:
        stack.push(null);
        break;
      case OP.NEWTRUE:
      case OP.NEWFALSE:
        stack.push(op === OP.NEWTRUE);
        break;
      case OP.TUPLE1:
      case OP.TUPLE2:
      case OP.TUPLE3: {
        const n = op - OP.TUPLE1 + 1;
        const items: PyValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        stack.push(new PyTuple(items));
        break;
      }
      case OP.TUPLE:
        stack.push(new PyTuple(popMark()));
        break;
      case OP.GLOBAL: {
        const first = b.indexOf(0x0a, pos);
        const end = first < 0 ? -1 : b.indexOf(0x0a, first + 1);
        if (end < 0 || end - pos > 64) bad('unterminated global name');
        const name = Buffer.from(b.subarray(need(end + 1 - pos), end)).toString('latin1');
        if (name !== RECONSTRUCT && name !== NDARRAY && name !== DTYPE)
          bad(`global ${name.replace('\n', '.')} is not one a numpy uint8 array needs`, at);
        stack.push(new PyGlobal(name));
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const f = pop();
        const a = args instanceof PyTuple ? args.items : [];
        const str = (v: PyValue) => (v instanceof PyBytes ? v.text() : v);
        if (
          f instanceof PyGlobal &&
          f.name === RECONSTRUCT &&
          a.length === 3 &&
          a[0] instanceof PyGlobal &&
          a[0].name === NDARRAY &&
          ints(a[1])?.join() === '0' &&
          str(a[2]) === 'b'
        )
          stack.push(new NdArray());
        else if (
          f instanceof PyGlobal &&
          f.name === DTYPE &&
          a.length === 3 &&
          str(a[0]) === 'u1' &&
          a[1] === 0 &&
          a[2] === 1
        )
          stack.push(new Dtype());
        else bad('a call other than numpy.ndarray or numpy.dtype("u1")', at);
        break;
      }
      case OP.BUILD: {
        const state = pop();
        const obj = top();
        const s = state instanceof PyTuple ? state.items : [];
        // (the array's state holds its data: only a dtype's short state is turned into text)
        const dtypeState = () => s.map((v) => (v instanceof PyBytes ? v.text() : v)).join();
        if (obj instanceof Dtype && !obj.built && dtypeState() === '3,|,,,,-1,-1,0') {
          obj.built = true;
        } else if (obj instanceof NdArray && obj.data === null && s.length === 5) {
          const shape = ints(s[1]);
          const dtype = s[2];
          const data = s[4];
          if (s[0] !== 1 || shape === null || !(dtype instanceof Dtype) || !dtype.built)
            return bad('an array that is not a numpy uint8 array', at);
          if (s[3] !== false) bad('a Fortran-ordered array (expected C order)', at);
          if (!(data instanceof PyBytes)) return bad('array data that is not a byte string', at);
          const count = shape.reduce((x, y) => x * y, 1);
          if (shape.some((d) => d < 0) || data.bytes.length !== count)
            bad(`array of shape (${shape.join(', ')}) with ${data.bytes.length} data bytes`, at);
          obj.shape = shape;
          obj.data = data.bytes;
        } else bad('an object state other than a numpy uint8 array', at);
        break;
      }
      default:
        bad(`pickle opcode 0x${op.toString(16)}, which these files do not use`, at);
    }
  }
}
