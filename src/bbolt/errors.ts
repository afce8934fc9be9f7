/**
 * A bbolt file that is not what bbolt 1.3 writes: bad meta pages, a page id beyond the
 * file, a page of the wrong kind, an element running off its page, keys out of order.
 * The message names the file and the page so an operator can find the damage.
 */
export class BoltFormatError extends Error {
  override readonly name = 'BoltFormatError';

  constructor(
    readonly file: string,
    /** the page at fault; undefined when the fault is the file as a whole (its size) */
    readonly page: bigint | undefined,
    readonly detail: string,
  ) {
    super(`${file}: ${page === undefined ? '' : `page ${page}: `}${detail}`);
  }
}
