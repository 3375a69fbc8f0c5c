/**
 * The audit's outputs from its cells: results.json, table.md and report.html. Used at the end of
 * an audit and by `onepixel audit --report`, which assembles them from whatever cells are present
 * (a sharded audit's); it reads the cells and the datasets (for the sample pictures) and writes
 * only these three files, each atomically.
 */
import { join } from 'node:path';
import { MANIFEST, readManifest } from '../../manifest.js';
import { exists, writeFileAtomic } from '../../output.js';
import { openTrainingData } from '../../train/data.js';
import type { AuditIndex, IndexedCell } from '../index-file.js';
import type { AuditCell } from '../matrix.js';
import { summarizeCells } from '../summary.js';
import { reportHtml, samplesHtml } from './html.js';
import { markdownTable } from './table.js';

/** Writes the three outputs; returns the markdown table. */
export async function writeAuditOutputs(
  out: string,
  index: AuditIndex,
  cells: AuditCell[],
  missing: IndexedCell[],
): Promise<string> {
  const { models, rows, seeds, strategies, datasets, backend, preset } = index;
  const layout = { models, strategies: rows, datasets: datasets.map((d) => d.name) };
  const table = markdownTable(cells, layout, seeds);
  const done = missing.length === 0;
  await writeFileAtomic(
    join(out, 'results.json'),
    JSON.stringify(
      {
        complete: done,
        backend,
        preset,
        datasets,
        models,
        strategies,
        countermeasures: index.countermeasures,
        rows,
        seeds,
        missing: missing.map((c) => c.key),
        summary: summarizeCells(cells).map(({ testCurve, trainCurve, ...s }) => ({
          ...s,
          testCurve: testCurve.map((v) => [v.mean, v.sd]),
          trainCurve: trainCurve.map((v) => [v.mean, v.sd]),
        })),
        cells,
      },
      null,
      2,
    ) + '\n',
  );
  await writeFileAtomic(join(out, 'table.md'), table);
  // The sample pictures need the datasets; an audit whose folders were moved or removed since
  // (an archived one) still gets its report, without them, saying so.
  const gone: string[] = [];
  const samples: Array<{ name: string; html: string }> = [];
  if (await exists(index.clean)) {
    const clean = await openTrainingData(index.clean);
    for (const d of datasets.slice(1)) {
      if (!(await exists(d.dir))) gone.push(d.dir);
      if (!(await exists(join(d.dir, MANIFEST)))) continue;
      const prot = await openTrainingData(d.dir);
      samples.push({
        name: d.name,
        html: await samplesHtml(clean.train, prot.train, await readManifest(d.dir)),
      });
    }
  } else gone.push(index.clean);
  const html = reportHtml({
    title: 'onepixel audit',
    cells,
    layout,
    seeds,
    samples,
    notes: [
      `Final clean-test accuracy after training on each dataset (backend ${backend}, preset ${preset ?? 'custom'}, seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}).`,
      ...(rows.length > strategies.length
        ? [
            'Rows strategy+countermeasure: every column’s training images went through the ' +
              'countermeasure first; the test set is the untouched clean one.',
          ]
        : []),
      done
        ? 'All cells finished.'
        : `Incomplete: ${missing.length} of ${index.cells.length} cells missing (${missing
            .map((c) => c.key)
            .join(', ')}); run the same command (or the missing shards) again to resume.`,
      ...(gone.length > 0
        ? [`No sample pictures: ${gone.join(', ')} not found (moved or removed since the audit).`]
        : []),
    ],
  });
  await writeFileAtomic(join(out, 'report.html'), html);
  return table;
}
