// The PyTorch figures that `bench kernels --torch-baseline FILE` compares with: the JSON that
// bench/torch_baseline.py writes on the same machine (torch.matmul, and causal
// scaled_dot_product_attention, in bf16 on the same shapes). A row of ours matches a torch row of
// the same shape; its fraction_of_torch is torch's time over ours (above 1: ours is faster).
import { readFileSync } from "node:fs";
import { z } from "zod";
import { UsageError } from "../../usage-error.ts";

const positiveInt = z.number().int().positive();
const positive = z.number().positive();

const torchBaselineSchema = z
  .object({
    torch_version: z.string(),
    device: z.string(),
    dtype: z.string(),
    matmul: z
      .array(z.object({ m: positiveInt, n: positiveInt, k: positiveInt, time_us: positive }).loose())
      .default([]),
    prefill_attention: z
      .array(
        z
          .object({
            num_seqs: positiveInt,
            query_len: positiveInt,
            num_q_heads: positiveInt,
            num_kv_heads: positiveInt,
            head_dim: positiveInt,
            time_us: positive,
          })
          .loose(),
      )
      .default([]),
  })
  .loose();

export type TorchBaseline = z.infer<typeof torchBaselineSchema>;

export function parseTorchBaseline(json: unknown, file: string): TorchBaseline {
  const parsed = torchBaselineSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(
      `--torch-baseline ${file}: ${issue.path.join(".") || "(top level)"}: ${issue.message} (expected the JSON of bench/torch_baseline.py)`,
    );
  }
  return parsed.data;
}

export function readTorchBaseline(file: string): TorchBaseline {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new UsageError(`--torch-baseline ${file}: ${(error as Error).message}`);
  }
  return parseTorchBaseline(json, file);
}

/** Torch's time over ours for the same m x n x k product; null when the file has no such row. */
export function matmulFractionOfTorch(
  baseline: TorchBaseline,
  row: { m: number; n: number; k: number; time_us: number },
): number | null {
  const torch = baseline.matmul.find((t) => t.m === row.m && t.n === row.n && t.k === row.k);
  return torch ? torch.time_us / row.time_us : null;
}

/** Torch's time over ours for the same sequences, query length and heads; null when absent. */
export function prefillFractionOfTorch(
  baseline: TorchBaseline,
  row: {
    num_seqs: number;
    query_len: number;
    num_q_heads: number;
    num_kv_heads: number;
    head_dim: number;
    time_us: number;
  },
): number | null {
  const torch = baseline.prefill_attention.find(
    (t) =>
      t.num_seqs === row.num_seqs &&
      t.query_len === row.query_len &&
      t.num_q_heads === row.num_q_heads &&
      t.num_kv_heads === row.num_kv_heads &&
      t.head_dim === row.head_dim,
  );
  return torch ? torch.time_us / row.time_us : null;
}
