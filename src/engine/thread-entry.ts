// Where a thread's entry file is. From source it is a file under src/; inside the compiled
// executable (built with each thread's entry as an extra entrypoint, see WORKER_ENTRIES in the
// Makefile) entries are named relative to the entries' common root, src/, and import.meta.url
// names the executable instead.

/** The entry to give `new Worker` for a file named by its path under src/. */
export function threadEntry(pathUnderSrc: string): string {
  return import.meta.url.includes("/$bunfs/")
    ? `./${pathUnderSrc}`
    : new URL(`../${pathUnderSrc}`, import.meta.url).href;
}
