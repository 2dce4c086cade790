// A SentencePiece BPE vocabulary scores pieces instead of listing merges: it merges the adjacent
// pair whose joined piece scores highest. Ranking every split of every piece by the joined piece's
// score gives the merge list a Hugging Face BPE model follows to the same tokens (as transformers'
// SentencePieceExtractor builds it for Llama's tokenizer.json).

export interface ScoredPiece {
  piece: string;
  id: number;
  score: number;
}

/** Merges as [left, right] pairs, best first; `mergeable` are the pieces merges may produce and join. */
export function sentencePieceMerges(mergeable: readonly ScoredPiece[]): [string, string][] {
  const idOf = new Map(mergeable.map((entry) => [entry.piece, entry.id]));
  const merges: { left: string; right: string; score: number; id: number; leftId: number; rightId: number }[] = [];
  for (const { piece, id, score } of mergeable) {
    // Split between characters, not UTF-16 units: a BPE symbol is a whole character.
    const characters = [...piece];
    for (let cut = 1; cut < characters.length; cut++) {
      const left = characters.slice(0, cut).join("");
      const right = characters.slice(cut).join("");
      const leftId = idOf.get(left);
      const rightId = idOf.get(right);
      if (leftId !== undefined && rightId !== undefined) merges.push({ left, right, score, id, leftId, rightId });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.leftId - b.leftId || a.rightId - b.rightId);
  return merges.map(({ left, right }) => [left, right]);
}
