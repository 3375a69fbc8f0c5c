/** The audit report's robustness chart (src/audit/report/robustness.ts) on hand-made cells. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditCell } from '../src/audit/matrix.js';
import { robustnessHtml, splitRow } from '../src/audit/report/robustness.js';
import { reportHtml } from '../src/audit/report/html.js';
import type { TrainResults } from '../src/train/results.js';

function cell(dataset: string, strategy: string, acc: number): AuditCell {
  return {
    dataset,
    model: 'lenet5',
    strategy,
    seed: 0,
    folder: '',
    results: {
      finalTestAccuracy: acc,
      testAccuracy: [acc],
      trainAccuracy: [acc],
    } as unknown as TrainResults,
  };
}

describe('robustness chart', () => {
  it('splits rows into strategy and countermeasure', () => {
    assert.deepEqual(splitRow('standard'), { strategy: 'standard', countermeasure: 'none' });
    assert.deepEqual(splitRow('standard+jpeg:10'), {
      strategy: 'standard',
      countermeasure: 'jpeg:10',
    });
    assert.deepEqual(splitRow('at+cutout'), { strategy: 'at+cutout', countermeasure: 'none' });
    assert.deepEqual(splitRow('at+cutout+gaussian:0.1'), {
      strategy: 'at+cutout',
      countermeasure: 'gaussian:0.1',
    });
    assert.deepEqual(splitRow('ueraser+orthogonal-projection'), {
      strategy: 'ueraser',
      countermeasure: 'orthogonal-projection',
    });
  });

  it('draws one line per dataset over the countermeasures, clean dashed as the reference', () => {
    const rows = ['standard', 'standard+jpeg:10', 'standard+bdr:2'];
    const acc: Record<string, number[]> = { clean: [0.8, 0.6, 0.7], OPS: [0.2, 0.5, 0.25] };
    const cells = Object.entries(acc).flatMap(([d, a]) => rows.map((r, i) => cell(d, r, a[i])));
    const layout = { models: ['lenet5'], strategies: rows, datasets: ['clean', 'OPS'] };
    const html = robustnessHtml(cells, layout);
    // x: 40 + 280·i/2 (W = 50 + 6.5·60 = 440 for the 60-character title, pads 40 and 120);
    // y: 24 + 150·(1 − a).
    assert.match(
      html,
      /<polyline class="series reference" fill="none" stroke="#555" stroke-width="2" stroke-dasharray="5,3" points="40\.0,54\.0 180\.0,84\.0 320\.0,69\.0"\/>/,
    );
    assert.match(
      html,
      /<polyline class="series" fill="none" stroke="#d62728" stroke-width="2" points="40\.0,144\.0 180\.0,99\.0 320\.0,136\.5"\/>/,
    );
    for (const c of ['none', 'jpeg:10', 'bdr:2']) assert.ok(html.includes(`>${c}</text>`), c);
    assert.ok(html.includes('lenet5, standard: clean-test accuracy (%) per countermeasure'));
    const report = reportHtml({ title: 't', cells, layout, samples: [], notes: [] });
    assert.ok(report.includes('<h2>Robustness: accuracy per countermeasure</h2>'));
  });

  it('puts UEraser, a training countermeasure, on the standard chart', () => {
    const rows = ['standard', 'standard+jpeg:10', 'cutout', 'ueraser'];
    const acc: Record<string, number[]> = {
      clean: [0.8, 0.6, 0.7, 0.5],
      OPS: [0.2, 0.5, 0.1, 0.4],
    };
    const cells = Object.entries(acc).flatMap(([d, a]) => rows.map((r, i) => cell(d, r, a[i])));
    const layout = { models: ['lenet5'], strategies: rows, datasets: ['clean', 'OPS'] };
    const html = robustnessHtml(cells, layout);
    assert.equal(html.match(/<svg/g)?.length, 1); // cutout alone has no chart
    // x: 40 + 280·i/2 over none, jpeg:10, ueraser; y: 24 + 150·(1 − a).
    assert.match(html, /stroke-dasharray="5,3" points="40\.0,54\.0 180\.0,84\.0 320\.0,99\.0"/);
    assert.match(
      html,
      /stroke="#d62728" stroke-width="2" points="40\.0,144\.0 180\.0,99\.0 320\.0,114\.0"/,
    );
    assert.ok(html.includes('>ueraser</text>'));
    // Without transform rows, ueraser stays a strategy row and no chart is drawn.
    const plain = { ...layout, strategies: ['standard', 'ueraser'] };
    assert.equal(robustnessHtml(cells, plain), '');
  });

  it('plots the mean over seeds with ± one sample sd as a whisker', () => {
    const rows = ['standard', 'standard+jpeg:10'];
    // clean, standard: 0.8 and 0.6 → mean 0.7, sd √0.02 = 0.1414; one seed elsewhere: no whisker.
    const cells = [
      cell('clean', 'standard', 0.8),
      { ...cell('clean', 'standard', 0.6), seed: 1 },
      cell('clean', 'standard+jpeg:10', 0.5),
    ];
    const layout = { models: ['lenet5'], strategies: rows, datasets: ['clean'] };
    const html = robustnessHtml(cells, layout);
    // y = 24 + 150·(1 − a): mean 69.0, mean ± sd at 90.2 and 47.8; x = 40 and 320.
    assert.match(html, /points="40\.0,69\.0 320\.0,99\.0"/);
    assert.deepEqual(html.match(/<line class="sd"[^>]*>/g), [
      '<line class="sd" x1="40.0" x2="40.0" y1="90.2" y2="47.8" stroke="#555" stroke-width="1"/>',
    ]);
    assert.ok(html.includes('whiskers ± one sample sd'));
  });

  it('is left out when no row has a countermeasure', () => {
    const layout = { models: ['lenet5'], strategies: ['standard'], datasets: ['clean'] };
    assert.equal(robustnessHtml([cell('clean', 'standard', 0.8)], layout), '');
  });
});
