// Locates the native libraries that `make` embeds into the executable. Inside a compiled
// binary they live in Bun's virtual filesystem, which dlopen cannot read, so they are copied
// once into a per-user cache named by their content hash.
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, isAbsolute, join, resolve } from "node:path";
import { embeddedLibraries } from "#embedded-libraries";

export type LibraryKind = keyof typeof embeddedLibraries;

export function availableLibraries(): LibraryKind[] {
  return Object.keys(embeddedLibraries) as LibraryKind[];
}

function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || (homedir() ? join(homedir(), ".cache") : tmpdir());
  return join(base, "vllm-ts", "native");
}

function isInsideExecutable(path: string): boolean {
  return path.startsWith("/$bunfs/") || path.startsWith("B:/~BUN/");
}

/** A filesystem path that dlopen can open for the embedded library of this kind. */
export async function nativeLibraryPath(kind: LibraryKind): Promise<string> {
  const embedded = embeddedLibraries[kind];
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
