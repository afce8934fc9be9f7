/** A refusal to start that names what is wrong and what to do. */
export class BootstrapError extends Error {
  override name = 'BootstrapError';
}
