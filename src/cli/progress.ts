/**
 * A terminal progress bar on stderr, shown only to a person watching (stderr is a TTY and the
 * CI variable is unset); everywhere else every method is a no-op, so logs stay clean.
 */
import cliProgress from 'cli-progress';

export interface ProgressBar {
  /** Advance by n (default 1). */
  tick(n?: number): void;
  /** Set the current value. */
  update(value: number): void;
  /** Finish the bar (leaves it on screen) and release the terminal line. */
  stop(): void;
}

const NOOP: ProgressBar = {
  tick() {},
  update() {},
  stop() {},
};

/** True when a bar would be drawn: an interactive stderr and no CI. */
export function progressEnabled(): boolean {
  const ci = process.env.CI;
  const inCi = ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
  return process.stderr.isTTY === true && !inCi;
}

function formatRate(rate: number): string {
  if (!Number.isFinite(rate) || rate <= 0) return '0';
  if (rate >= 100) return rate.toFixed(0);
  if (rate >= 10) return rate.toFixed(1);
  return rate.toFixed(2);
}

/**
 * A bar labelled `label` counting towards `total` in `unit`s (e.g. 'img', 'MB'), showing
 * value/total, the rate in units per second and the ETA.
 */
export function progressBar(label: string, total: number, unit: string): ProgressBar {
  if (!progressEnabled()) return NOOP;

  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 50,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  let value = 0;
  const payload = (): { rate: string } => {
    const seconds = (Date.now() - start) / 1000;
    return { rate: formatRate(seconds > 0 ? value / seconds : 0) };
  };
  bar.start(total, 0, { rate: '0' });
  let stopped = false;

  return {
    tick(n = 1) {
      if (stopped) return;
      value += n;
      bar.update(value, payload());
    },
    update(v: number) {
      if (stopped) return;
      value = v;
      bar.update(value, payload());
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
