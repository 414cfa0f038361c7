/**
 * Package config loads YAML configuration and validates it with zod schemas. Every module's
 * configuration goes through here, so every bad value is reported the same way: file, field
 * path, value found, what is allowed — all problems at once, and nothing applied.
 */
export { ConfigError, formatPath, type ConfigIssue } from "./errors.js";
export { loadConfigFile, parseConfig, parseYamlDocument, parseYamlText, readYamlFile } from "./load.js";
