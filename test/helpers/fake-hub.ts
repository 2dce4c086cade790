// A stand-in for the Hugging Face Hub on 127.0.0.1: serves local model directories through the
// endpoints @huggingface/hub calls (model info, file tree, resolve with range probes) and records
// every request, so downloads are tested without a network.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export interface FakeRepo {
  dir: string;
  /** The commit "main" points at. */
  commit: string;
  /** As a gated repo: requests without `Authorization: Bearer <token>` get 401. */
  token?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | null;
}

export interface FakeHub {
  url: string;
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

/** Files stored in LFS on the real Hub; their ETag is the sha256 of the content. */
const isLfs = (path: string) => /\.(safetensors|bin)$/.test(path);

function fileEntry(dir: string, path: string) {
  const bytes = new Uint8Array(readFileSync(join(dir, path)));
  const gitOid = new Bun.CryptoHasher("sha1").update(`blob ${bytes.byteLength}\0`).update(bytes).digest("hex");
  const lfs = isLfs(path)
    ? { oid: new Bun.CryptoHasher("sha256").update(bytes).digest("hex"), size: bytes.byteLength, pointerSize: 134 }
    : undefined;
  return { bytes, entry: { type: "file", path, size: bytes.byteLength, oid: gitOid, ...(lfs && { lfs }) } };
}

function json(body: unknown, status = 200, errorCode?: string): Response {
  return Response.json(body, { status, headers: errorCode ? { "X-Error-Code": errorCode } : {} });
}

function resolveFile(request: Request, repo: FakeRepo, path: string): Response {
  if (path.includes("..") || !statSync(join(repo.dir, path), { throwIfNoEntry: false })?.isFile()) {
    return json({ error: "Entry not found" }, 404, "EntryNotFound");
  }
  const { bytes, entry } = fileEntry(repo.dir, path);
  const headers: Record<string, string> = {
    "Content-Type": "application/octet-stream",
    ETag: `"${entry.oid}"`,
    "X-Repo-Commit": repo.commit,
    "Accept-Ranges": "bytes",
  };
  if (entry.lfs) headers["X-Linked-ETag"] = `"${entry.lfs.oid}"`;
  const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.get("Range") ?? "");
  if (!range) return new Response(bytes, { headers });
  const start = Number(range[1]);
  const end = Math.min(Number(range[2]), bytes.byteLength - 1);
  headers["Content-Range"] = `bytes ${start}-${end}/${bytes.byteLength}`;
  return new Response(bytes.slice(start, end + 1), { status: 206, headers });
}

function route(request: Request, repos: Record<string, FakeRepo>): Response {
  const path = decodeURIComponent(new URL(request.url).pathname);
  const match =
    /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)$/.exec(path) ??
    /^\/([^/]+\/[^/]+)\/(resolve)\/([^/]+)\/(.+)$/.exec(path);
  if (!match) return json({ error: "Not found" }, 404);
  const [, name, endpoint, revision, file] = match as unknown as [string, string, string, string, string | undefined];
  const repo = repos[name];
  if (!repo) return json({ error: "Repository not found" }, 404, "RepoNotFound");
  if (repo.token && request.headers.get("Authorization") !== `Bearer ${repo.token}`) {
    return json(
      { error: `Access to model ${name} is restricted. You must be authenticated to access it.` },
      401,
      "GatedRepo",
    );
  }
  if (revision !== "main" && revision !== repo.commit)
    return json({ error: `Invalid rev id: ${revision}` }, 404, "RevisionNotFound");
  if (endpoint === "revision")
    return json({ _id: name, id: name, sha: repo.commit, private: false, gated: repo.token ? "auto" : false });
  if (endpoint === "tree") {
    const files = readdirSync(repo.dir).filter((entry) => statSync(join(repo.dir, entry)).isFile());
    return json(files.map((file) => fileEntry(repo.dir, file).entry));
  }
  return resolveFile(request, repo, file!);
}

export function startFakeHub(repos: Record<string, FakeRepo>): FakeHub {
  const requests: RecordedRequest[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      requests.push({
        method: request.method,
        path: new URL(request.url).pathname,
        authorization: request.headers.get("Authorization"),
      });
      return route(request, repos);
    },
  });
  return { url: server.url.href.replace(/\/$/, ""), requests, stop: () => server.stop(true) };
}
