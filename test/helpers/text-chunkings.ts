// The ways a streamed text can arrive: split in two at every boundary, one UTF-16 unit at a time
// (so even a surrogate pair or a marker is cut), and seeded random chunkings that can be replayed.
import { RequestGenerator } from "../../src/engine/random.ts";

export function chunkings(text: string, randomCount = 25, seed = 7): string[][] {
  const result: string[][] = [[text], text.split("")];
  for (let i = 0; i <= text.length; i++) result.push([text.slice(0, i), text.slice(i)]);
  const generator = new RequestGenerator(seed);
  for (let n = 0; n < randomCount; n++) {
    const chunks: string[] = [];
    for (let start = 0; start < text.length; ) {
      const length = 1 + Math.floor(generator.nextFloat() * 12);
      chunks.push(text.slice(start, start + length));
      start += length;
    }
    result.push(chunks);
  }
  return result;
}
