// [service_credentials] for the flavor-id lookup, from the OpenStack client environment (the
// variables an openrc file sets: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, ...),
// until ceilometer.conf is read (issue 5). No OS_AUTH_URL: no lookup, flavor.id falls back to the
// flavor name as Zed does without Nova.

import { FlavorIdResolver, serviceCredentialsSchema, type FlavorLookupReport } from '../discovery/flavor-lookup.js';

const ENV_TO_OPTION: Record<string, string> = {
  OS_AUTH_URL: 'auth_url',
  OS_USERNAME: 'username',
  OS_USER_ID: 'user_id',
  OS_PASSWORD: 'password',
  OS_USER_DOMAIN_NAME: 'user_domain_name',
  OS_USER_DOMAIN_ID: 'user_domain_id',
  OS_PROJECT_NAME: 'project_name',
  OS_PROJECT_ID: 'project_id',
  OS_PROJECT_DOMAIN_NAME: 'project_domain_name',
  OS_PROJECT_DOMAIN_ID: 'project_domain_id',
  OS_REGION_NAME: 'region_name',
  OS_INTERFACE: 'interface',
  OS_CACERT: 'cafile',
};

/**
 * A resolver when OS_AUTH_URL is set, null when it is not; throws an Error naming the variables
 * when they are set but incomplete or malformed (never showing the password).
 */
export function flavorResolverFromEnv(env: NodeJS.ProcessEnv, onReport?: (r: FlavorLookupReport) => void): FlavorIdResolver | null {
  if (!env.OS_AUTH_URL) return null;
  const raw: Record<string, string> = {};
  for (const [name, option] of Object.entries(ENV_TO_OPTION)) {
    const v = env[name];
    if (v !== undefined && v !== '') raw[option] = v;
  }
  const parsed = serviceCredentialsSchema.safeParse(raw);
  if (!parsed.success) {
    const byOption = Object.fromEntries(Object.entries(ENV_TO_OPTION).map(([k, v]) => [v, k]));
    const problems = parsed.error.issues.map((i) => `${byOption[String(i.path[0])] ?? String(i.path[0])}: ${i.message}`);
    throw new Error(`OpenStack credentials in the environment (for the flavor-id lookup): ${problems.join('; ')}`);
  }
  return new FlavorIdResolver({ credentials: parsed.data, onReport });
}
