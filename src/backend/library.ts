// Locates the native libraries that `make` embeds into the executable: the CUDA library, and the
// CPU library's variant for this CPU (cpu-variant.ts). Inside a compiled binary they live in Bun's
// virtual filesystem, which dlopen cannot read, so they are copied once into a per-user cache
// named by their content hash.
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, isAbsolute, join, resolve } from "node:path";
import { cpuVariants, cudaLibrary } from "#embedded-libraries";
import { chooseCpuVariant, hostCpuFlags } from "./cpu-variant.ts";

function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || (homedir() ? join(homedir(), ".cache") : tmpdir());
  return join(base, "vllm-ts", "native");
}

function isInsideExecutable(path: string): boolean {
  return path.startsWith("/$bunfs/") || path.startsWith("B:/~BUN/");
}

/** A filesystem path that dlopen can open for an embedded library file. */
async function openablePath(embedded: string): Promise<string> {
  if (!isInsideExecutable(embedded)) {
    // A bundle (the GPU kit's tests) names its library files relative to the bundled module.
    return isAbsolute(embedded) ? embedded : resolve(import.meta.dir, embedded);
  }
  const bytes = new Uint8Array(await Bun.file(embedded).arrayBuffer());
  const hash = Bun.hash(bytes).toString(16);
  const dir = cacheDir();
  const target = join(dir, `${hash}-${basename(embedded)}`);
  if (!existsSync(target)) {
    mkdirSync(dir, { recursive: true });
    // Write then rename, so a concurrent start never dlopens a half-written file.
    const partial = `${target}.${process.pid}.partial`;
    writeFileSync(partial, bytes, { mode: 0o755 });
    renameSync(partial, target);
  }
  return target;
}

/** Whether this build embeds the CUDA library (it does where nvcc was present). */
export function hasCudaLibrary(): boolean {
  return cudaLibrary !== null;
}

/** The path to dlopen the embedded CUDA library from. */
export async function cudaLibraryPath(): Promise<string> {
  if (cudaLibrary === null) throw new Error("this build has no CUDA library");
  return openablePath(cudaLibrary);
}

/**
 * The embedded CPU library for this CPU: the variant VLLM_TS_CPU_VARIANT names, else the best one
 * this CPU runs; throws, naming the missing instructions, when there is none.
 */
export async function cpuLibrary(): Promise<{ variant: string; path: string }> {
  const variant = chooseCpuVariant(cpuVariants, hostCpuFlags(), process.env.VLLM_TS_CPU_VARIANT);
  return { variant: variant.name, path: await openablePath(variant.library) };
}
