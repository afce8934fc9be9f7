// The one error type configuration code throws (configFromFile, defaultConfig): its
// message is meant for the person who wrote the flags or the file.

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
