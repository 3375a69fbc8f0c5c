/**
 * The audit table's numbers, by hand: mean ± sample sd over seeds, and the mark of a value over
 * fewer seeds than the audit's (the other cells missing), so a partial row is never read as full.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatStat } from '../src/audit/summary.js';
import { tableLegend } from '../src/audit/report/table.js';

describe('audit table values', () => {
  it('formats mean ± sd, and marks values over fewer seeds than the audit', () => {
    // 50 % and 60 %: mean 55, sample sd √((25 + 25) / 1) = 7.0711
    const two = { mean: 0.55, sd: Math.sqrt(0.005), n: 2 };
    assert.equal(formatStat(two), '55.00 ± 7.07');
    assert.equal(formatStat(two, 2), '55.00 ± 7.07');
    assert.equal(formatStat(two, 3), '55.00 ± 7.07 (n = 2)');
    const one = { mean: 0.5956, sd: null, n: 1 };
    assert.equal(formatStat(one), '59.56');
    assert.equal(formatStat(one, 1), '59.56');
    assert.equal(formatStat(one, 3), '59.56 (n = 1)');
    assert.equal(formatStat(undefined, 3), '—');
    assert.equal(formatStat({ mean: NaN, sd: null, n: 0 }, 3), '—');
  });

  it('the legend says what the mark means', () => {
    assert.match(tableLegend([0, 1, 2]), /over 3 seeds \(0, 1, 2\); \(n = k\) marks a value/);
    assert.match(tableLegend([0]), /One seed \(0\)\./);
  });
});
