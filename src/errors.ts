/** An error a user can act on: the message names the file, record or flag at fault. */
export class OnepixelError extends Error {
  override name = 'OnepixelError';
}

export function fail(message: string): never {
  throw new OnepixelError(message);
}
