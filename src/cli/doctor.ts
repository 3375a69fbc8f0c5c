/**
 * `onepixel doctor`: which training backends this machine can run, and for each one that it
 * cannot, what is missing and the command that installs it. Exits 1 only when no backend works.
 */
import { Command } from 'commander';
import { initEngine, NATIVE_FIX, type BackendName } from '../nn/engine.js';
import {
  ADDON_PATH,
  loadNative,
  nativeLoadError,
  nativeMissing,
} from '../nn/backends/native/addon.js';
import { startWebgpu, webgpuInfo } from '../nn/backends/webgpu/index.js';

export interface BackendReport {
  backend: BackendName;
  usable: boolean;
  detail: string;
  /** What to run to make it usable, when it is not. */
  fix?: string;
}

async function nativeReport(): Promise<BackendReport> {
  const addon = loadNative();
  if (addon !== null) {
    const i = addon.info();
    return {
      backend: 'native',
      usable: true,
      detail:
        `oneDNN ${i.onednn} (${i.cpuRuntime}), ${i.threads} threads, ISA ${i.isaName}; ` +
        (i.bf16
          ? 'bf16: yes (--precision bf16 or auto)'
          : 'bf16: no (needs avx512_core_bf16 or AMX; --precision auto runs fp32)') +
        `; addon ${ADDON_PATH}`,
    };
  }
  const missing = await nativeMissing();
  const why = nativeLoadError();
  const detail = missing.length
    ? `${why}; missing: ${missing.join(', ')}`
    : `${why}; every prerequisite is installed: the build failed or was skipped`;
  return { backend: 'native', usable: false, detail, fix: NATIVE_FIX };
}

async function tryBackend(name: 'wasm' | 'cpu', detail: string): Promise<BackendReport> {
  try {
    await initEngine(name);
    return { backend: name, usable: true, detail };
  } catch (e) {
    return { backend: name, usable: false, detail: (e as Error).message, fix: 'npm ci' };
  }
}

/** webgpu: starts it (Vulkan on a GPU, else Mesa's software OpenGL) and names the adapter. */
async function webgpuReport(): Promise<BackendReport> {
  try {
    await startWebgpu();
    const i = webgpuInfo();
    const kind = i?.software ? 'software adapter: correct, far too slow to train' : 'GPU';
    return { backend: 'webgpu', usable: true, detail: `${i?.api}: ${i?.adapter} (${kind})` };
  } catch (e) {
    return {
      backend: 'webgpu',
      usable: false,
      detail: (e as Error).message.split('; ')[0],
      fix: 'apt-get install -y libvulkan1 (and the GPU driver), or libegl1 libegl-mesa0 libgl1-mesa-dri',
    };
  }
}

/** Every backend's report, in the order `--backend` lists them (auto last: what it picks). */
export async function doctor(): Promise<BackendReport[]> {
  const native = await nativeReport();
  const reports = [
    native,
    await tryBackend('wasm', 'tfjs-backend-wasm (XNNPACK, 128-bit SIMD), one thread per worker'),
    await tryBackend('cpu', "tfjs' pure-JavaScript backend (slow; a reference for tests)"),
    await webgpuReport(),
  ];
  const gpu = reports[3].usable && !webgpuInfo()?.software;
  const picked = native.usable ? 'native' : gpu ? 'webgpu' : reports[1].usable ? 'wasm' : null;
  reports.push({
    backend: 'auto',
    usable: picked !== null,
    detail: picked ? `picks ${picked}` : 'nothing to pick',
  });
  return reports;
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .option('--json', 'print the reports as JSON', false)
    .action(async (f: { json: boolean }) => {
      const reports = await doctor();
      if (f.json) process.stdout.write(JSON.stringify(reports) + '\n');
      else
        for (const r of reports) {
          const state = r.usable ? 'ok' : 'missing';
          process.stdout.write(`${r.backend.padEnd(7)} ${state.padEnd(8)} ${r.detail}\n`);
          if (r.fix) process.stdout.write(`${''.padEnd(16)}fix: ${r.fix}\n`);
        }
      if (!reports.some((r) => r.usable && r.backend !== 'auto')) process.exitCode = 1;
    });
}
