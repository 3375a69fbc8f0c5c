/** The random draws a transform needs (src/train/rng.ts's Rng has them). */
export interface Random {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** A uniform integer in [0, n). */
  int(n: number): number;
}
