// Errors of the libvirt client. Each says what happened and where, so the layers above can log it
// as it is and decide by class (or by libvirt error code) what to do.

/** The bytes from the daemon break the protocol: bad frame length, truncated or unknown data. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** virErrorNumber values the agent tells apart (libvirt's include/libvirt/virterror.h). */
export const ErrorCode = {
  INTERNAL_ERROR: 1,
  NO_SUPPORT: 3,
  OPERATION_FAILED: 9,
  OPERATION_DENIED: 29,
  RPC: 39,
  NO_DOMAIN: 42,
  OPERATION_INVALID: 55,
  AUTH_FAILED: 45,
  ARGUMENT_UNSUPPORTED: 74,
  OPERATION_TIMEOUT: 68,
  AGENT_UNRESPONSIVE: 86,
  NO_DOMAIN_METADATA: 80,
} as const;

/** The decoded `remote_error` of a REPLY with status ERROR. */
export interface RemoteErrorFields {
  code: number;
  domain: number;
  message: string | null;
  level: number;
  domainName: string | null;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
}

/** An error reported by libvirtd for one call (`remote_error`). The connection itself is fine. */
export class LibvirtError extends Error {
  override name = 'LibvirtError';
  readonly code: number;
  readonly domain: number;
  readonly level: number;
  readonly domainName: string | null;
  readonly procedure: string;

  constructor(fields: RemoteErrorFields, procedure: string) {
    super(`${procedure}: ${fields.message ?? `libvirt error code ${fields.code}`} (code ${fields.code}, domain ${fields.domain})`);
    this.code = fields.code;
    this.domain = fields.domain;
    this.level = fields.level;
    this.domainName = fields.domainName;
    this.procedure = procedure;
  }

  /** The domain vanished between listing and the call: normal churn, not a failure. */
  get isNoDomain(): boolean {
    return this.code === ErrorCode.NO_DOMAIN;
  }
}

/** The connection ended (socket closed, daemon gone, keepalive lost) while the call was pending. */
export class ConnectionClosedError extends Error {
  override name = 'ConnectionClosedError';
}

/** No reply within the per-call timeout. The connection may still be usable. */
export class CallTimeoutError extends Error {
  override name = 'CallTimeoutError';
}

/**
 * The caller stopped waiting for a call (its AbortSignal fired), e.g. because an identical call
 * answered first. The connection is fine; a reply that still comes is dropped.
 */
export class CallAbandonedError extends Error {
  override name = 'CallAbandonedError';
}

/** A `libvirt_uri` we cannot serve (remote transports, malformed URIs). */
export class UnsupportedUriError extends Error {
  override name = 'UnsupportedUriError';
}
