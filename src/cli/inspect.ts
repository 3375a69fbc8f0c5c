/** `onepixel inspect`: per-class pixels and scores, and L0/PSNR against the source. */
import { infinityReplacer } from '../manifest.js';
import { Command } from 'commander';
import { inspect } from '../inspect.js';

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .argument('<dir>', 'a folder written by onepixel protect')
    .option('--json', 'print the report as JSON', false)
    .action(async (dir: string, f: { json: boolean }) => {
      const r = await inspect(dir);
      if (f.json) {
        process.stdout.write(JSON.stringify(r, infinityReplacer) + '\n');
        return;
      }
      const m = r.manifest;
      const out = [
        `${dir}: ${m.method} (` +
          (m.objective ? `objective ${m.objective}, ${m.pixelsPerClass} pixel(s) per class` : '') +
          (m.objective && m.noise ? '; ' : '') +
          (m.noise
            ? `noise ε = ${(255 * m.noise.epsilon).toFixed(2)}/255 in ${m.noise.file}`
            : '') +
          '), ' +
          `${m.source.dataset} ${m.height}×${m.width}×${m.channels}, format ${m.output.format}, ` +
          `${m.output.train} train / ${m.output.test ?? 0} test images, onepixel ${m.version}`,
        `source: ${m.source.dataDir}${r.sourceNote ? ` (${r.sourceNote})` : ' (sha256 verified)'}`,
        '',
        'label class          pixels (row,col)=[value] score        images  L0 mean  L0 max  PSNR dB  changed elsewhere',
      ];
      for (const c of m.classes) {
        const rep = r.classes?.[c.label];
        const px = c.pixels
          .map(
            (p) =>
              `(${p.row},${p.col})=[${p.value.join(',')}] ${fmt(p.score, 3)}${p.overwritten ? ' (overwritten)' : ''}`,
          )
          .join('; ');
        const cmp = rep
          ? `${String(rep.images).padStart(6)}  ${fmt(rep.meanL0, 2).padStart(7)}  ${String(rep.maxL0).padStart(6)}  ${fmt(rep.psnr, 2).padStart(7)}  ${rep.changedOutsidePixels}`
          : '';
        out.push(`${String(c.label).padStart(5)} ${c.name.padEnd(14)} ${px.padEnd(34)} ${cmp}`);
      }
      process.stdout.write(out.join('\n') + '\n');
    });
}
