export { parseUri, parseQuery, formatQuery, type ParsedUri } from './parse.ts';
export { maskUri, maskSecrets, maskConfig, isSensitiveKey, MASK } from './mask.ts';
export { resolveOptions, coerce, closest, type OptionSchema, type OptionSpec, type OptionValues } from './options.ts';
export { parseDuration, formatDuration } from './duration.ts';
