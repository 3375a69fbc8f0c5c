/** Pieces the report's SVG charts share. */

/** Horizontal grid lines at 0, 25, 50, 75 and 100 % between x = left and x = right, labelled left. */
export function accuracyGrid(
  left: number,
  right: number,
  y: (accuracy: number) => number,
  fontSize = 10,
): string {
  return [0, 0.25, 0.5, 0.75, 1]
    .map(
      (a) =>
        `<line x1="${left}" x2="${right}" y1="${y(a)}" y2="${y(a)}" stroke="#ddd"/><text x="${left - 4}" y="${y(a) + 4}" font-size="${fontSize}" text-anchor="end">${a * 100}</text>`,
    )
    .join('');
}

/**
 * The colour of a dataset in every chart of a report: by its place in the report's dataset list
 * (clean first, as audits list it), so clean, OPS, EM… keep one colour each across the curves and
 * the robustness chart.
 */
const DATASET_COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

export function datasetColour(index: number): string {
  return DATASET_COLOURS[index % DATASET_COLOURS.length];
}
