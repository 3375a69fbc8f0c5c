/** Pieces the report's SVG charts share. */

/** Horizontal grid lines at 0, 25, 50, 75 and 100 % between x = left and x = right, labelled left. */
export function accuracyGrid(left: number, right: number, y: (accuracy: number) => number): string {
  return [0, 0.25, 0.5, 0.75, 1]
    .map(
      (a) =>
        `<line x1="${left}" x2="${right}" y1="${y(a)}" y2="${y(a)}" stroke="#ddd"/><text x="${left - 4}" y="${y(a) + 4}" font-size="10" text-anchor="end">${a * 100}</text>`,
    )
    .join('');
}
