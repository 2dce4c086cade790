// Client input quoted in an error message, cut short: an error must not send a megabyte of model
// name (or of any other field) back to the client, nor into the logs. Its own module, importing
// nothing, so that the engine's and the server's messages cut alike.

/** How much of a client's text an error message quotes. */
export const MAX_QUOTED_LENGTH = 100;

/** `text`, or its first `max` characters and an ellipsis. */
export function quoteInput(text: string, max = MAX_QUOTED_LENGTH): string {
  if (text.length <= max) return text;
  // Never keep half of a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(text[max - 1]!) ? max - 1 : max;
  return `${text.slice(0, end)}…`;
}
