// `bench serve` without --url: the same executable runs `serve` on a free port as a child
// process, and the benchmark talks to it over HTTP like to any other server.
import type { Subprocess } from "bun";

const START_TIMEOUT_MS = 120_000;

export interface ChildServer {
  url: string;
  /** "cpu (AMD EPYC ...)" from the server's start-up log, or "unknown". */
  device: string;
  stop(): Promise<void>;
}

/** The command that runs this executable: the compiled binary alone, or bun with the entry script. */
function selfCommand(): string[] {
  const script = process.argv[1];
  return script !== undefined && /\.[cm]?[jt]s$/.test(script) ? [process.execPath, script] : [process.execPath];
}

export async function startChildServer(serveArgs: string[]): Promise<ChildServer> {
  const child: Subprocess<"ignore", "ignore", "pipe"> = Bun.spawn(
    [...selfCommand(), "serve", ...serveArgs, "--host", "127.0.0.1", "--port", "0"],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  let log = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) log += decoder.decode(chunk, { stream: true });
  })();
  const stop = async () => {
    child.kill("SIGTERM");
    await child.exited;
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode}:\n${log}`);
    const url = /serving .* at (http:\/\/[\d.]+:\d+)\/v1/.exec(log)?.[1];
    if (
      url &&
      (await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      const loaded = /loaded on (\S+ \(.*?\)) in /.exec(log)?.[1];
      return { url, device: loaded ?? "unknown", stop };
    }
    await Bun.sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error(`the server did not become healthy within ${START_TIMEOUT_MS / 1000} s:\n${log}`);
}
