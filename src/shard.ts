/**
 * Shards: N copies of one command (a Slurm array, or any scheduler) split a job between them.
 * `--shard I/N` (I counted from 0, as SLURM_ARRAY_TASK_ID is) names one of them. Records are split
 * in contiguous ranges (a protect shard reads and writes one run of files); audit cells are dealt
 * round-robin in their sorted order, so every cell belongs to exactly one shard.
 */
import { fail } from './errors.js';

export interface Shard {
  index: number;
  count: number;
}

/** Parses `I/N` (0 ≤ I < N); `flag` names the option in the error. */
export function parseShard(text: string, flag = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(count) || count < 1 || !(index < count))
    fail(`${flag} ${text}: expected I/N with 0 ≤ I < N, e.g. 0/4 (I counts from 0)`);
  return { index, count };
}

export function shardText(s: Shard): string {
  return `${s.index}/${s.count}`;
}

/** The records [first, first + count) of n that shard `s` owns: contiguous, as even as can be. */
export function shardRange(n: number, s: Shard): { first: number; count: number } {
  const first = Math.floor((s.index * n) / s.count);
  const end = Math.floor(((s.index + 1) * n) / s.count);
  return { first, count: end - first };
}

/** The shard of each key: keys sorted (code-point order), then dealt round-robin. */
export function shardsOf(keys: readonly string[], count: number): Map<string, number> {
  const sorted = [...new Set(keys)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return new Map(sorted.map((k, i) => [k, i % count]));
}

/** The keys shard `s` owns, in their given order. */
export function keysOfShard(keys: readonly string[], s: Shard): string[] {
  const of = shardsOf(keys, s.count);
  return keys.filter((k) => of.get(k) === s.index);
}
