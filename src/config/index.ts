// Configuration: ceilometer.conf with oslo.config's rules, and polling.yaml with Ceilometer's.

export { ConfigError, ConfigErrors, DEFAULT_ORIGIN, type ConfigErrorInit } from './errors.js';
export { fnmatch, fnmatchToRegExp } from './fnmatch.js';
export { normalizeKey, normalizeSectionName, parseIni, readIniFile, type IniFile, type IniSection, type IniValue } from './ini.js';
export { DEFAULT_FIND_DIRS, DEFAULT_SEARCH, findConfigFile, loadConfig, type ConfigSource, type LoadConfigOptions, type LoadedConfig } from './load.js';
export {
  buildOptions,
  isHostAddress,
  libvirtUriForType,
  parseListen,
  redactOptionValue,
  secretKind,
  type BuildContext,
  type BuildResult,
  type CeilopollConfig,
  type CeilopollSettings,
  type ConfOptions,
  type EffectiveOption,
  type IgnoredOption,
  type InstanceDiscoveryMethod,
  type LibvirtType,
  type OptionOrigin,
} from './options.js';
export {
  ZED_METERS,
  meterMatches,
  parsePollingYaml,
  readPollingYaml,
  type PollingConfig,
  type PollingSource,
  type PollingTask,
  type PollingYamlOptions,
} from './polling-yaml.js';
export { redactedSummary, renderEffectiveConfig } from './render.js';
