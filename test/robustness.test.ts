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

  it("draws one line per dataset over the countermeasures, clean dashed as the reference, in the curves' colours", () => {
    const rows = ['standard', 'standard+jpeg:10', 'standard+bdr:2'];
    const acc: Record<string, number[]> = { clean: [0.8, 0.6, 0.7], OPS: [0.2, 0.5, 0.25] };
    const cells = Object.entries(acc).flatMap(([d, a]) => rows.map((r, i) => cell(d, r, a[i])));
    const layout = { models: ['lenet5'], strategies: rows, datasets: ['clean', 'OPS'] };
    const html = robustnessHtml(cells, layout);
    // x: 48 + 422·i/2 (W = 640, the minimum, pads 48 and 170); y: 30 + 250·(1 − a) (H = 380,
    // pads 30 and 100). Colours: the curves' (clean first: blue, then red), clean dashed.
    assert.match(
      html,
      /<polyline class="series reference" data-dataset="clean" fill="none" stroke="#1f77b4" stroke-width="2\.5" stroke-dasharray="5,3" points="48\.0,80\.0 259\.0,130\.0 470\.0,105\.0"\/>/,
    );
    assert.match(
      html,
      /<polyline class="series" data-dataset="OPS" fill="none" stroke="#d62728" stroke-width="2\.5" points="48\.0,230\.0 259\.0,155\.0 470\.0,217\.5"\/>/,
    );
    assert.match(
      html,
      /<svg class="robustness" xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="640" height="380"/,
    );
    // The same datasets' curves use the same colours.
    const report0 = reportHtml({ title: 't', cells, layout, samples: [], notes: [] });
    assert.match(
      report0,
      /<polyline class="series" data-dataset="clean" fill="none" stroke="#1f77b4"/,
    );
    assert.match(
      report0,
      /<polyline class="series" data-dataset="OPS" fill="none" stroke="#d62728"/,
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
    // x: 48 + 422·i/2 over none, jpeg:10, ueraser; y: 30 + 250·(1 − a).
    assert.match(html, /stroke-dasharray="5,3" points="48\.0,80\.0 259\.0,130\.0 470\.0,155\.0"/);
    assert.match(
      html,
      /stroke="#d62728" stroke-width="2\.5" points="48\.0,230\.0 259\.0,155\.0 470\.0,180\.0"/,
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
    // y = 30 + 250·(1 − a): mean 105.0, mean ± sd at 140.4 and 69.6; x = 48 and 470.
    assert.match(html, /points="48\.0,105\.0 470\.0,155\.0"/);
    assert.deepEqual(html.match(/<line class="sd"[^>]*>/g), [
      '<line class="sd" x1="48.0" x2="48.0" y1="140.4" y2="69.6" stroke="#1f77b4" stroke-width="1.5"/>',
    ]);
    assert.ok(html.includes('whiskers ± one sample sd'));
  });

  it('is left out when no row has a countermeasure', () => {
    const layout = { models: ['lenet5'], strategies: ['standard'], datasets: ['clean'] };
    assert.equal(robustnessHtml([cell('clean', 'standard', 0.8)], layout), '');
  });
});
